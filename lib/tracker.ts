/**
 * The memory quota tracker: a facade over the books, reclamation and the signals.
 *
 * ## Layout
 * - `books.ts`: the records, the total and the only transactions that change quantities
 *   (claim, release, participant tear-down, account tear-down);
 * - `reclamation.ts`: the scheduling state (`idle | pending | running | stalled`) and one
 *   object per run;
 * - `signals.ts`: `events$` (told as they happen), `usage$`, `pressure$` (in order, no
 *   nested emission);
 * - `handles.ts`: `Account`, `WeakAccount`, `Participation`, which know the books through
 *   the narrow `Ledger` interface;
 * - this file: configuration, and what follows a change of the books (pressure edges, a
 *   usage snapshot, a reclamation to schedule), decided once the books are whole.
 *
 * Imports go one way: tracker → handles, reclamation, signals → books. No cycle.
 *
 * @module
 */
import { asapScheduler, type Observable, type SchedulerLike } from 'rxjs';
import { Books, type AccountRecord, type ParticipantRecord } from './books.js';
import { resolveConfig, resolveHeapGuard, resolveStaleAfter, type ResolvedConfig } from './config.js';
import { controlOf, registerControl, type GuardInstaller, type ReclaimControl } from './control.js';
import { ConfigError } from './errors.js';
import { Account, recordOfAccount } from './handles.js';
import { installHeapGuard } from './heapGuard.js';
import { Reclaimer, type Counters } from './reclamation.js';
import { Signals, named } from './signals.js';
import { installStaleWatch } from './staleness.js';
import type {
  CollapseReason,
  MemquotaConfig,
  MemquotaEvent,
  ParticipantFault,
  ReclaimCause,
  TrackerOptions,
  TrackerStats,
  Usage,
  VictimPolicy,
} from './types.js';

export { NO_DATA_SLOP } from './reclamation.js';

/** The default of the `reclaimTimeout` option, in ms. */
export const DEFAULT_RECLAIM_TIMEOUT = 10_000;

/** The result of {@link MemoryQuotaTracker.audit}. */
export interface AuditReport {
  /** `tracker.used`. */
  readonly used: number;
  /** The sum of every live participant's claims, recomputed from the records. */
  readonly claimed: number;
  /** Open accounts in the books. */
  readonly accounts: number;
  /** Live participants in the books. */
  readonly participants: number;
  /** Every invariant found broken, as a sentence; empty when the books balance. */
  readonly problems: readonly string[];
}

const defaultNow = (): number => performance.now();

/** Options of `tracker.newAccount()` and `account.newChild()`. */
export interface AccountOptions {
  /** A parent account of the same tracker (not with `newChild`, whose parent is the account). */
  readonly parent?: Account;
  /** A name carried on events and metrics, e.g. `'conn 10.0.0.7:51234'`. */
  readonly name?: string;
}

/** A plain `{ parent?, name? }` object, as opposed to an account (or anything else). */
function isAccountOptions(value: unknown): value is AccountOptions {
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.keys(value).every((key) => key === 'parent' || key === 'name');
}

function isScheduler(value: unknown): value is SchedulerLike {
  return value !== null && typeof value === 'object' && typeof (value as SchedulerLike).schedule === 'function';
}

/** Validates the options that are not part of the quota. */
function checkOptions(options: TrackerOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new ConfigError([], `options must be an object, got ${String(options)}`);
  }
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw new ConfigError(['now'], `now must be a function returning milliseconds, got ${typeof options.now}`);
  }
  if (options.scheduler !== undefined && !isScheduler(options.scheduler)) {
    throw new ConfigError(['scheduler'], 'scheduler must be an RxJS SchedulerLike (with schedule())');
  }
  if (options.yieldScheduler !== undefined && !isScheduler(options.yieldScheduler)) {
    throw new ConfigError(['yieldScheduler'], 'yieldScheduler must be an RxJS SchedulerLike (with schedule())');
  }
  if (options.victimPolicy !== undefined && options.victimPolicy !== 'oldest' && options.victimPolicy !== 'largest') {
    throw new ConfigError(['victimPolicy'], `victimPolicy must be 'oldest' or 'largest', got ${String(options.victimPolicy)}`);
  }
  const timeout = options.reclaimTimeout;
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && (Number.isFinite(timeout) || timeout === Infinity))) {
    throw new ConfigError(['reclaimTimeout'], `reclaimTimeout must be a positive number of ms or Infinity, got ${typeof timeout === 'number' ? timeout : typeof timeout}`);
  }
  resolveHeapGuard(options.heapGuard);
  resolveStaleAfter(options.staleAfter);
}

/**
 * The guards' installers: the heap guard (`lib/heapGuard.ts`) and the stale watch
 * (`lib/staleness.ts`); each reads its own option (`heapGuard`, `staleAfter`) and does nothing
 * when it is off.
 */
const guardInstallers: readonly GuardInstaller[] = [installHeapGuard, installStaleWatch];

/**
 * One memory quota system: a maximum, a low-water mark, the exact total claimed by every
 * live participant, and the reclamation that brings the total back down.
 *
 * Trackers are independent of each other. A tracker holds no timer while idle: a process that
 * stops using it can exit (the reclaim deadline is unref'd; a run's yields end with the run).
 *
 * ## Example
 * ```ts
 * import { MemoryQuotaTracker } from 'rxjs-memquota';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 64 * 1024 * 1024 });
 * const account = tracker.newAccount();
 * tracker.events$.subscribe((e) => console.log(e.type));
 * ```
 */
export class MemoryQuotaTracker {
  private config: ResolvedConfig;
  private readonly books: Books;
  private readonly signals: Signals;
  private readonly reclaimer: Reclaimer;
  private readonly clock: () => number;
  private highPressure = false;
  private settleWaiters: (() => void)[] = [];
  private shutdownHooks: (() => void)[] = [];
  private readonly counters: Counters = {
    reclaimRuns: 0,
    victims: 0,
    bytesReclaimed: 0,
    accountsCollapsed: 0,
    participantErrors: 0,
    heapGuardRuns: 0,
    staleRuns: 0,
  };

  /**
   * Every observer of what the tracker does: `reclaim-start`, `victim`, `collapse`,
   * `reclaim-end`, `participant-error`, told as they happen. Subscribers may call back into
   * the tracker (an event they cause is told at once, nested).
   */
  readonly events$: Observable<MemquotaEvent>;

  /**
   * The tracker's use: the current snapshot on subscription, then one after every change of
   * the books or the configuration. Snapshots are built only while someone subscribes.
   */
  readonly usage$: Observable<Usage>;

  /**
   * The soft pressure tier, edge-triggered with hysteresis: the current state on subscription,
   * then `'high'` when `used` passes `softMax`, and `'normal'` again only once `used` is back
   * at or below `lowWater`. A subscriber that changes the books meanwhile (frees its cache on
   * `'high'`) causes an edge that every subscriber sees after this one: all see the edges in
   * the order they happened and end on the current state.
   */
  readonly pressure$: Observable<'normal' | 'high'>;

  private constructor(config: ResolvedConfig, options: TrackerOptions, tracking: boolean) {
    this.config = config;
    this.clock = options.now ?? defaultNow;
    const policy: VictimPolicy = options.victimPolicy ?? 'oldest';
    this.signals = new Signals(
      () => this.snapshot(false),
      () => this.updateAlarms(),
    );
    this.events$ = this.signals.events$;
    this.usage$ = this.signals.usage$;
    this.pressure$ = this.signals.pressure$;
    this.books = new Books(
      this,
      tracking,
      {
        changed: (delta) => this.consequences(delta),
        participantError: (p, fault, error) => this.reportFault(p, fault, error),
        candidateAppeared: (acc) => this.reclaimer.candidateAppeared(acc),
        collapsed: (acc, reason, released) => this.collapsed(acc, reason, released),
        heldWhenAsked: (acc) => this.reclaimer.heldWhenAsked(acc),
        joinedVictim: (acc) => this.reclaimer.joinedVictim(acc),
      },
      config.softMax,
    );
    this.reclaimer = new Reclaimer({
      books: this.books,
      signals: this.signals,
      counters: this.counters,
      policy,
      scheduler: options.scheduler ?? asapScheduler,
      reclaimTimeout: options.reclaimTimeout ?? DEFAULT_RECLAIM_TIMEOUT,
      yieldScheduler: options.yieldScheduler,
      clock: this.clock,
      max: () => this.config.max,
      lowWater: () => this.config.lowWater,
      reportFault: (p, fault, error) => this.reportFault(p, fault, error),
      afterRun: () => this.afterRun(),
    });
    registerControl(this, this.control());
  }

  /**
   * Creates a tracker.
   *
   * @param config The quota (`max`, `lowWater`, `softMax`); default all `'auto'`.
   *   `max: Infinity` gives a no-op tracker.
   * @param options The clock, the scheduler reclamation runs on, the victim policy, the
   *   reclaim deadline, where a run yields, and the guards (see {@link TrackerOptions}).
   * @throws ConfigError for an invalid or inconsistent configuration or option.
   */
  static create(config?: MemquotaConfig, options: TrackerOptions = {}): MemoryQuotaTracker {
    const resolved = resolveConfig(config);
    checkOptions(options);
    const tracker = new MemoryQuotaTracker(resolved, options, resolved.max !== Infinity);
    // The guards (heap guard, staleness): see `guardInstallers`.
    if (tracker.enabled) {
      const control = controlOf(tracker);
      for (const install of guardInstallers) install(control, options);
    }
    return tracker;
  }

  /**
   * A tracker that tracks nothing and never reclaims: accounts and participations work, every
   * claim is accepted and `used` stays 0. For turning the quota off without changing code.
   */
  static noop(): MemoryQuotaTracker {
    return new MemoryQuotaTracker({ max: Infinity, lowWater: Infinity, softMax: Infinity }, {}, false);
  }

  /** Bytes claimed by all live participants, exactly, after every call. */
  get used(): number {
    return this.books.used;
  }

  /** Reclamation starts when `used` passes this (`Infinity` when disabled). */
  get max(): number {
    return this.config.max;
  }

  /** Reclamation goes on until `used` is at or below this. */
  get lowWater(): number {
    return this.config.lowWater;
  }

  /** `pressure$` turns `'high'` when `used` passes this. */
  get softMax(): number {
    return this.config.softMax;
  }

  /** Whether this tracker counts anything (false for `noop()` and `max: Infinity`). */
  get enabled(): boolean {
    return this.books.tracking;
  }

  /** The tracker's clock, in ms: data ages are measured with it. */
  now(): number {
    return this.clock();
  }

  /** Counters of what the tracker did, as a fresh snapshot. */
  get stats(): TrackerStats {
    return { ...this.counters, accounts: this.books.accounts.size, participants: this.books.participants };
  }

  /**
   * Opens a new account, optionally as a child of `parent`, optionally named.
   *
   * @param parentOrOptions An account of this tracker (reclaiming it will reclaim the new one
   *   too), or `{ parent?, name? }`: the name is carried on events and metrics (it need not be
   *   unique; the numeric `id` is). An `Account` made by another copy of the package (ESM
   *   and CJS builds in one process) is accepted when it belongs to this tracker.
   * @return The only handle of the new account: close it (or let it be collected) to free it.
   * @throws MemquotaError `TrackerShutdown`; `AccountClosed` for a closed parent. A child
   *   opened under an account whose reclaim answers are pending is reclaimed with it.
   * @throws TypeError if `parent` is not an `Account` of this tracker, or `name` not a string.
   */
  newAccount(parentOrOptions?: Account | AccountOptions): Account {
    const { parent, name } = isAccountOptions(parentOrOptions) ? parentOrOptions : { parent: parentOrOptions, name: undefined };
    if (name !== undefined && typeof name !== 'string') throw new TypeError(`name must be a string, got ${typeof name}`);
    let parentRec: AccountRecord | undefined;
    if (parent !== undefined) {
      parentRec = recordOfAccount(parent, 'parent');
      if (parentRec.ledger !== this.books) {
        throw new TypeError(
          `parent belongs to ${parentRec.ledger.tracking ? 'another' : 'a no-op'} tracker; accounts can only be linked within one tracker`,
        );
      }
    }
    return new Account(this.books.openAccount(parentRec, name));
  }

  /**
   * Changes the quota. A lower `max` starts reclamation at once if `used` is above it; a higher
   * `lowWater` stops a running reclamation early. On a no-op tracker the config is validated
   * and otherwise ignored.
   *
   * @throws ConfigError for an invalid configuration (nothing changes).
   */
  reconfigure(config: MemquotaConfig): void {
    const resolved = resolveConfig(config);
    if (!this.books.tracking || !this.books.running) return;
    this.config = resolved;
    this.reclaimer.unstall();
    this.consequences(0);
  }

  /**
   * Resolves when no reclamation is scheduled or running, and always once the tracker is shut
   * down. A participant's `reclaim()` that awaits this waits until the run ends, which the
   * reclaim deadline (`reclaimTimeout`) bounds: it does not deadlock.
   */
  settled(): Promise<void> {
    if (!this.reclaimer.busy || !this.books.running) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  /**
   * Shuts the tracker down: every account is torn down (`collapsed$` emits
   * `'tracker-shutdown'`), the books go to 0, `events$`, `usage$` and `pressure$` complete,
   * `settled()` resolves, and later use of any handle fails with `TrackerShutdown` (`release`
   * is a silent no-op).
   */
  shutdown(): void {
    const books = this.books;
    if (books.state === 'shutdown') return;
    const wasRunning = books.running;
    books.stop('shutdown');
    this.reclaimer.stop();
    for (const acc of [...books.accounts]) books.teardownAccount(acc, 'tracker-shutdown');
    this.resolveSettled(true);
    if (wasRunning) this.signals.complete();
    const hooks = this.shutdownHooks;
    this.shutdownHooks = [];
    for (const stop of hooks) stop();
  }

  /**
   * Recomputes the books from the records and reports every invariant that does not hold:
   * `used` equals the sum of live claims, each account's total equals its participants', no
   * torn-down record is left in the books. For tests and debugging; O(participants).
   */
  audit(): AuditReport {
    const books = this.books;
    const problems: string[] = [];
    let claimed = 0;
    let participants = 0;
    for (const acc of books.accounts) {
      if (acc.state !== 'open') problems.push(`account ${acc.id} is ${acc.state} but still in the books`);
      let sum = 0;
      for (let p = acc.firstParticipant; p !== null; p = p.next) {
        participants++;
        if (!p.live) problems.push(`a torn-down participant of account ${acc.id} is still in the books`);
        if (!(p.used >= 0)) problems.push(`a participant of account ${acc.id} holds ${p.used} bytes`);
        sum += p.used;
      }
      if (sum !== acc.used) problems.push(`account ${acc.id}: participants hold ${sum} but the account says ${acc.used}`);
      for (const parent of acc.parents) {
        if (parent.state !== 'open' || !parent.children.has(acc)) problems.push(`account ${acc.id} has a dangling parent ${parent.id}`);
      }
      for (const child of acc.children) {
        if (child.state !== 'open' || !child.parents.has(acc)) problems.push(`account ${acc.id} has a dangling child ${child.id}`);
      }
      claimed += sum;
    }
    const used = books.used;
    if (claimed !== used) problems.push(`tracker.used is ${used} but live claims add up to ${claimed}`);
    if (participants !== books.participants) problems.push(`${participants} participants in the books but the count says ${books.participants}`);
    return { used, claimed, accounts: books.accounts.size, participants, problems };
  }

  // ---------------------------------------------------------------------------------------
  // What follows a change of the books (called by the books once they are whole)

  /** Pressure edges, a usage snapshot, reclamation; user code is reached last. */
  private consequences(delta: number): void {
    if (!this.books.running) return;
    const used = this.books.used;
    const { softMax, lowWater, max } = this.config;
    const reclaimer = this.reclaimer;
    let edge = false;
    if (this.highPressure ? used <= lowWater : used > softMax) {
      this.highPressure = !this.highPressure;
      edge = true;
    }
    reclaimer.checkStall(used);
    if (delta < 0 && used <= max) reclaimer.unstall();
    const startRun = used > max && reclaimer.schedule.kind === 'idle';
    this.updateAlarms();
    if (edge) this.signals.pressure(this.highPressure ? 'high' : 'normal');
    if (this.signals.usageWatched) this.signals.usage(this.snapshot(startRun));
    if (startRun && this.books.running && reclaimer.schedule.kind === 'idle' && this.books.used > this.config.max) {
      reclaimer.request('quota', this.config.lowWater, undefined);
    }
  }

  /** The total's alarms: where the next change of the books needs a look. */
  private updateAlarms(): void {
    const { softMax, lowWater, max } = this.config;
    let above = this.highPressure ? max : softMax;
    let atOrBelow = this.highPressure ? lowWater : -1;
    if (this.signals.usageWatched) above = -Infinity;
    if (this.reclaimer.stalled) atOrBelow = Infinity;
    this.books.total.setAlarms(above, atOrBelow);
  }

  private afterRun(): void {
    if (this.books.running) this.consequences(0);
    this.resolveSettled(false);
  }

  private resolveSettled(always: boolean): void {
    if (!always && this.reclaimer.busy) return;
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private snapshot(starting: boolean): Usage {
    const { max, lowWater } = this.config;
    const used = this.books.used;
    return {
      used,
      max,
      lowWater,
      pressure: this.books.tracking ? used / max : 0,
      reclaiming: starting || this.reclaimer.busy,
    };
  }

  private reportFault(p: ParticipantRecord, fault: ParticipantFault, error?: unknown): void {
    this.counters.participantErrors++;
    if (!this.signals.eventsObserved) return;
    const acc = p.account;
    const event: MemquotaEvent =
      error === undefined ? { type: 'participant-error', account: acc.id, fault } : { type: 'participant-error', account: acc.id, fault, error };
    this.signals.event(named(event, acc.name));
  }

  private collapsed(acc: AccountRecord, reason: CollapseReason, released: number): void {
    if (reason === 'reclaimed') this.counters.accountsCollapsed++;
    if (this.signals.eventsObserved) this.signals.event(named({ type: 'collapse', account: acc.id, reason, released }, acc.name));
  }

  /** The guards' view of this tracker. */
  private control(): ReclaimControl {
    const read = {
      used: () => this.used,
      max: () => this.max,
      lowWater: () => this.lowWater,
      softMax: () => this.softMax,
      highPressure: () => this.highPressure,
    };
    return {
      get used() {
        return read.used();
      },
      get max() {
        return read.max();
      },
      get lowWater() {
        return read.lowWater();
      },
      get softMax() {
        return read.softMax();
      },
      get highPressure() {
        return read.highPressure();
      },
      pressure$: this.pressure$,
      now: () => this.clock(),
      requestReclaim: (cause: ReclaimCause, downTo: number, olderThan?: number) => {
        if (!this.books.running || !this.books.tracking) return;
        if (!(typeof downTo === 'number' && downTo >= 0)) throw new RangeError(`requestReclaim: downTo must be a number ≥ 0, got ${String(downTo)}`);
        if (olderThan !== undefined && typeof olderThan !== 'number') throw new TypeError('requestReclaim: olderThan must be a number');
        this.reclaimer.unstall();
        this.reclaimer.request(cause, downTo, olderThan);
      },
      onShutdown: (stop: () => void) => {
        if (this.books.state === 'shutdown') stop();
        else this.shutdownHooks.push(stop);
      },
    };
  }
}
