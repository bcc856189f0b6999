/**
 * The memory quota tracker: the books, the transactions that change them, and reclamation.
 *
 * ## Transactions
 * The books change only through three transactions, all in this file:
 * - **claim** (`_claim`): a live participant adds bytes;
 * - **release** (`_release`): a participant gives bytes back (clamped to what it holds);
 * - **tear-down** (`_teardownParticipant`, `_teardownAccount`): a participant or a whole
 *   account leaves the books and everything it held is released at once.
 * Each goes through {@link MemoryQuotaTracker.fold}, the one fold that updates the three
 * counters and then derives what follows: a reclamation to schedule, a pressure edge, a
 * `usage$` snapshot (built only when someone subscribes).
 *
 * ## Reclamation
 * Scheduled on the tracker's scheduler when `used` passes `max`, never run inside the
 * bookkeeping. A run builds a heap of candidate accounts (their own participants' oldest data,
 * or their bytes under `'largest'`), then repeatedly: checks `used` against `lowWater`, pops
 * the best victim (re-reading its key; a stale key is pushed back), asks the victim and all
 * its descendants to reclaim, waits for every answer, and tears down what collapsed.
 *
 * @module
 */
import { asapScheduler, BehaviorSubject, Observable, Subject, type SchedulerLike, type Subscription } from 'rxjs';
import { Account } from './account.js';
import { resolveConfig, resolveHeapGuard, resolveStaleAfter, type ResolvedConfig } from './config.js';
import type { ReclaimControl } from './controlTypes.js';
import { installHeapGuard } from './heapGuard.js';
import { installStaleWatch } from './staleness.js';
import { ConfigError, MemquotaError } from './errors.js';
import { MinHeap } from './heap.js';
import {
  AccountRecord,
  ParticipantRecord,
  accountGone,
  joinAccount,
  leaveAccount,
  linkAccounts,
  participantsOf,
  unlinkAccount,
  type CollapseListener,
} from './records.js';
import type {
  CollapseReason,
  MemquotaConfig,
  MemquotaEvent,
  ParticipantFault,
  ReclaimCause,
  Reclaimed,
  TrackerOptions,
  TrackerStats,
  Usage,
  VictimPolicy,
} from './types.js';

/**
 * A participant that says it holds no data while the books say it holds more than this many
 * bytes is treated as faulty and becomes a very old candidate.
 */
export const NO_DATA_SLOP = 4096;

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

type TrackerState = 'running' | 'shutdown' | 'corrupted';

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

function describeBytes(bytes: unknown): string {
  return typeof bytes === 'number' ? String(bytes) : `${typeof bytes} ${String(bytes)}`;
}

/** @internal The RangeError for a bad byte count, shared by claim and release. */
export function invalidBytes(op: 'claim' | 'release', bytes: unknown): RangeError {
  return new RangeError(
    `${op}(${describeBytes(bytes)}): the byte count must be a non-negative safe integer (0 ≤ n ≤ ${Number.MAX_SAFE_INTEGER})`,
  );
}

/** `event` with the account's `name` when it has one (events carry no `name: undefined`). */
function named<E extends MemquotaEvent>(event: E, name: string | undefined): E {
  return name === undefined ? event : { ...event, name };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

/**
 * One memory quota system: a maximum, a low-water mark, the exact total claimed by every
 * live participant, and the reclamation that brings the total back down.
 *
 * Trackers are independent of each other. A tracker holds no timer: a process that stops
 * using it can exit.
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
  private usedBytes = 0;
  private config: ResolvedConfig;
  private readonly tracking: boolean;
  private state: TrackerState = 'running';
  /** `tracking && state === 'running'`: the one flag the hot path reads. */
  private counting: boolean;
  /** What corrupted the tracker, when it was an exception. */
  private corruption: unknown = undefined;
  private readonly clock: () => number;
  private readonly scheduler: SchedulerLike;
  private readonly policy: VictimPolicy;

  private nextAccountId = 1;
  /** The key `popVictim` read for the victim it returned. */
  private victimKey = 0;
  /**
   * Counts releases. Data ages only grow, and only through a release (or a tear-down, which
   * takes the account out): while this is unchanged, the heap's 'oldest' keys are still true.
   */
  private releases = 0;
  /** `releases` when the candidates' keys were last known true. */
  private keysCheckedAt = -1;
  private readonly openAccounts = new Set<AccountRecord>();
  private participantCount = 0;

  private reclaimPending = false;
  private reclaimRunning = false;
  /** A run ended with no candidate left; don't rescan on every claim until something changes. */
  private stalled = false;
  /** `used` when the tracker stalled: growing a whole hysteresis band past it re-arms. */
  private stalledAt = 0;
  /**
   * A participant started holding data (a claim from 0) or joined since the candidates were
   * last collected: there may be a candidate the heap does not know.
   */
  private candidateAppeared = false;
  private scheduled: Subscription | null = null;
  private settleWaiters: (() => void)[] = [];

  private highPressure = false;
  /** Above this, a claim has consequences (a pressure edge or reclamation). */
  private claimAlarm: number;
  /** At or below this, a release has consequences (pressure back to normal). */
  private releaseAlarm = -1;
  /** Subscribers of `usage$`: snapshots are built only while there are some. */
  private usageWatchers = 0;
  private readonly eventSubject = new Subject<MemquotaEvent>();
  private readonly usageSubject = new Subject<Usage>();
  private readonly pressureSubject = new BehaviorSubject<'normal' | 'high'>('normal');

  private counters = { reclaimRuns: 0, heapGuardRuns: 0, victims: 0, bytesReclaimed: 0, accountsCollapsed: 0, participantErrors: 0 };

  // wiring for heapGuard/staleness: ported by the lead onto the split core
  /** A run asked for by a guard, not yet started (merged when several come). */
  private request: { cause: ReclaimCause; downTo: number; olderThan: number | undefined } | null = null;
  /** The running run's target when a guard asked for it (else `lowWater`), and its age filter. */
  private runDownTo: number | undefined = undefined;
  private runOlderThan: number | undefined = undefined;
  private shutdownHooks: (() => void)[] = [];
  /** What the guards see of this tracker; held here so that their weak references last as long as the tracker. */
  private readonly control: ReclaimControl = ((tracker: MemoryQuotaTracker): ReclaimControl => ({
    get used() { return tracker.usedBytes; },
    get max() { return tracker.config.max; },
    get lowWater() { return tracker.config.lowWater; },
    get softMax() { return tracker.config.softMax; },
    now: () => tracker.clock(),
    get highPressure() { return tracker.highPressure; },
    requestReclaim: (cause, downTo, olderThan) => tracker.requestReclaim(cause, downTo, olderThan),
    onShutdown: (stop) => void tracker.shutdownHooks.push(stop),
  }))(this);

  /** @internal Finalizes forgotten `Account` handles. */
  readonly _accountFinalizer = new FinalizationRegistry<AccountRecord>((rec) => this._dropAccountHandle(rec));
  /** @internal Finalizes forgotten `Participation` handles. */
  readonly _participationFinalizer = new FinalizationRegistry<ParticipantRecord>((rec) => this._dropParticipantHandle(rec));
  /** @internal Notices participants that were garbage-collected. */
  readonly _participantFinalizer = new FinalizationRegistry<ParticipantRecord>((rec) => {
    if (rec.live) {
      this.participantError(rec, 'garbage-collected');
      this._teardownParticipant(rec);
    }
  });

  /**
   * Every observer of what the tracker does: `reclaim-start`, `victim`, `collapse`,
   * `reclaim-end`, `participant-error`. Subscribers may call back into the tracker.
   */
  readonly events$: Observable<MemquotaEvent> = this.eventSubject.asObservable();

  /**
   * The tracker's use: the current snapshot on subscription, then one after every change of
   * the books or the configuration. Snapshots are built only while someone subscribes.
   */
  readonly usage$: Observable<Usage> = new Observable<Usage>((subscriber) => {
    subscriber.next(this.snapshot());
    this.usageWatchers++;
    const subscription = this.usageSubject.subscribe(subscriber);
    return () => {
      this.usageWatchers--;
      subscription.unsubscribe();
    };
  });

  /**
   * The soft pressure tier, edge-triggered with hysteresis: the current state on subscription,
   * then `'high'` when `used` passes `softMax`, and `'normal'` again only once `used` is back
   * at or below `lowWater`.
   */
  readonly pressure$: Observable<'normal' | 'high'> = this.pressureSubject.asObservable();

  private constructor(config: ResolvedConfig, options: TrackerOptions, tracking: boolean) {
    this.config = config;
    this.claimAlarm = config.softMax;
    this.tracking = tracking;
    this.counting = tracking;
    this.clock = options.now ?? defaultNow;
    this.scheduler = options.scheduler ?? asapScheduler;
    this.policy = options.victimPolicy ?? 'oldest';
  }

  /**
   * Creates a tracker.
   *
   * @param config The quota (`max`, `lowWater`, `softMax`); default all `'auto'`.
   *   `max: Infinity` gives a no-op tracker.
   * @param options The clock, the scheduler reclamation runs on, the victim policy.
   * @throws ConfigError for an invalid or inconsistent configuration or option.
   */
  static create(config?: MemquotaConfig, options: TrackerOptions = {}): MemoryQuotaTracker {
    const resolved = resolveConfig(config);
    if (options === null || typeof options !== 'object') {
      throw new ConfigError([], `options must be an object, got ${String(options)}`);
    }
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new ConfigError(['now'], `now must be a function returning milliseconds, got ${typeof options.now}`);
    }
    if (options.scheduler !== undefined && typeof options.scheduler?.schedule !== 'function') {
      throw new ConfigError(['scheduler'], 'scheduler must be an RxJS SchedulerLike (with schedule())');
    }
    if (options.victimPolicy !== undefined && options.victimPolicy !== 'oldest' && options.victimPolicy !== 'largest') {
      throw new ConfigError(['victimPolicy'], `victimPolicy must be 'oldest' or 'largest', got ${String(options.victimPolicy)}`);
    }
    const mark = resolveHeapGuard(options.heapGuard);
    const staleAfter = resolveStaleAfter(options.staleAfter);
    const tracker = new MemoryQuotaTracker(resolved, options, resolved.max !== Infinity);
    // wiring for heapGuard/staleness: ported by the lead onto the split core
    if (tracker.tracking) {
      if (mark !== undefined) installHeapGuard(tracker.control, { mark });
      installStaleWatch(tracker.control, { staleAfter, pressure$: tracker.pressure$ });
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
    return this.usedBytes;
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
    return this.tracking;
  }

  /** The tracker's clock, in ms: data ages are measured with it. */
  now(): number {
    return this.clock();
  }

  /** Counters of what the tracker did, as a fresh snapshot. */
  get stats(): TrackerStats {
    return { ...this.counters, accounts: this.openAccounts.size, participants: this.participantCount };
  }

  /**
   * Opens a new account, optionally as a child of `parent`, optionally named.
   *
   * @param parentOrOptions An account of this tracker (reclaiming it will reclaim the new one
   *   too), or `{ parent?, name? }`: the name is carried on events and metrics (it need not be
   *   unique; the numeric `id` is).
   * @return The only handle of the new account: close it (or let it be collected) to free it.
   * @throws MemquotaError `TrackerShutdown`, or `AccountClosed` for a closed parent.
   * @throws TypeError if `parent` is not an `Account` of this tracker, or `name` not a string.
   */
  newAccount(parentOrOptions?: Account | AccountOptions): Account {
    const { parent, name } = isAccountOptions(parentOrOptions) ? parentOrOptions : { parent: parentOrOptions, name: undefined };
    if (name !== undefined && typeof name !== 'string') throw new TypeError(`name must be a string, got ${typeof name}`);
    const parentRec = parent === undefined ? undefined : this._accountRecordOf(parent, 'parent');
    this._checkUsable();
    if (parentRec && parentRec.state !== 'open') throw accountGone(parentRec);
    const rec = new AccountRecord(this, this.nextAccountId++, name);
    this.openAccounts.add(rec);
    if (parentRec) {
      linkAccounts(rec, parentRec);
    }
    return new Account(rec);
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
    if (!this.tracking || this.state !== 'running') return;
    this.config = resolved;
    this.stalled = false;
    this.consequences(0);
  }

  /** Resolves when no reclamation is scheduled or running. */
  settled(): Promise<void> {
    if (!this.reclaimPending && !this.reclaimRunning) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  /**
   * Shuts the tracker down: every account is torn down (`collapsed$` emits
   * `'tracker-shutdown'`), the books go to 0, `events$`, `usage$` and `pressure$` complete,
   * and later use of any handle fails with `TrackerShutdown` (`release` is a silent no-op).
   */
  shutdown(): void {
    if (this.state === 'shutdown') return;
    const wasRunning = this.state === 'running';
    this.state = 'shutdown';
    this.counting = false;
    this.scheduled?.unsubscribe();
    this.scheduled = null;
    this.reclaimPending = false;
    for (const rec of [...this.openAccounts]) this._teardownAccount(rec, 'tracker-shutdown');
    if (!this.reclaimRunning) this.resolveSettled();
    const hooks = this.shutdownHooks; // wiring for heapGuard/staleness
    this.shutdownHooks = [];
    for (const stop of hooks) stop();
    if (wasRunning) {
      this.eventSubject.complete();
      this.usageSubject.complete();
      this.pressureSubject.complete();
    }
  }

  /**
   * Recomputes the books from the records and reports every invariant that does not hold:
   * `used` equals the sum of live claims, each account's total equals its participants', no
   * torn-down record is left in the books. For tests and debugging; O(participants).
   */
  audit(): AuditReport {
    const problems: string[] = [];
    let claimed = 0;
    let participants = 0;
    for (const acc of this.openAccounts) {
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
    if (claimed !== this.usedBytes) problems.push(`tracker.used is ${this.usedBytes} but live claims add up to ${claimed}`);
    if (participants !== this.participantCount) problems.push(`${participants} participants in the books but the count says ${this.participantCount}`);
    return { used: this.usedBytes, claimed, accounts: this.openAccounts.size, participants, problems };
  }

  // ---------------------------------------------------------------------------------------
  // Handle support (internal)

  /** @internal Throws unless the tracker accepts work. */
  _checkUsable(): void {
    if (this.state === 'running') return;
    if (this.state === 'shutdown') throw new MemquotaError('TrackerShutdown', 'the memory quota tracker was shut down');
    const cause = this.corruption === undefined ? '' : ` (${String(this.corruption)})`;
    throw new MemquotaError('TrackerCorrupted', `the memory quota tracker found its books inconsistent and refuses all work${cause}`);
  }

  /** @internal The record behind an account argument, with a clear TypeError for anything else. */
  _accountRecordOf(account: unknown, what: string): AccountRecord {
    if (!(account instanceof Account)) {
      throw new TypeError(`${what} must be an Account of rxjs-memquota, got ${account === null ? 'null' : typeof account}`);
    }
    const rec = account._record();
    if (rec.tracker !== this) {
      throw new TypeError(
        `${what} belongs to ${rec.tracker.tracking ? 'another' : 'a no-op'} tracker; accounts can only be linked within one tracker`,
      );
    }
    return rec;
  }

  /** @internal Registers a participant record in an open account. */
  _addParticipant(account: AccountRecord): ParticipantRecord {
    this._checkUsable();
    if (account.state !== 'open') throw accountGone(account);
    const rec = new ParticipantRecord(account);
    joinAccount(account, rec);
    this.participantCount++;
    this.stalled = false;
    this.candidateAppeared = true;
    return rec;
  }

  /** @internal One `Account` handle fewer; the last one tears the account down. */
  _dropAccountHandle(rec: AccountRecord): void {
    // A stream closing its own account while answering a reclaim request was still reclaimed.
    if (--rec.handles === 0 && rec.state === 'open') this._teardownAccount(rec, rec.reclaiming ? 'reclaimed' : 'closed');
  }

  /** @internal One `Participation` handle fewer; the last one tears the participant down. */
  _dropParticipantHandle(rec: ParticipantRecord): void {
    if (--rec.handles === 0) this._teardownParticipant(rec);
  }

  // ---------------------------------------------------------------------------------------
  // The transactions

  /** @internal Claim: a live participant adds `bytes` (already validated). */
  _claim(rec: ParticipantRecord, bytes: number): void {
    if (!this.counting) {
      this._checkUsable();
      return; // a no-op tracker accepts every claim and counts nothing
    }
    if (this.usedBytes + bytes > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`claim(${bytes}) would take the tracker's total past Number.MAX_SAFE_INTEGER`);
    }
    if (rec.used === 0 && bytes > 0 && (this.reclaimRunning || this.stalled)) {
      // An empty participant starts holding data: it may be the candidate a run lacked.
      this.stalled = false;
      this.candidateAppeared = true;
    }
    this.fold(rec, bytes);
  }

  /** @internal Release: a participant gives back `bytes` (validated), clamped to what it holds. */
  _release(rec: ParticipantRecord, bytes: number): void {
    if (!this.counting) return;
    this.releases++;
    if (bytes > rec.used) {
      this.participantError(rec, 'over-release', new RangeError(`release(${bytes}) but only ${rec.used} bytes are claimed`));
      bytes = rec.used;
    }
    if (bytes !== 0) this.fold(rec, -bytes);
  }

  /**
   * @internal Tear-down of a participant: it leaves the books and all it held is released.
   * `settleLater` is for an account's tear-down, which settles the consequences once at its end.
   */
  _teardownParticipant(rec: ParticipantRecord, settleLater = false): number {
    if (!rec.live) return 0;
    rec.target = null; // what makes it dead
    const released = rec.used;
    leaveAccount(rec.account, rec);
    this.participantCount--;
    if (released !== 0) {
      this.book(rec, -released);
      if (!settleLater) this.settle(-released);
    }
    // No unregister from _participantFinalizer: it costs a hash lookup per tear-down, and a
    // later callback finds the record dead and does nothing.
    return released;
  }

  /** @internal Tear-down of an account: its participants, its links, then `collapsed$`. */
  _teardownAccount(rec: AccountRecord, reason: CollapseReason, releasedEarlier = 0): void {
    if (rec.state !== 'open') return;
    rec.state = reason;
    let released = releasedEarlier;
    // Participants that want to hear of it (the operators' queues) are told after the books
    // are settled; they are reached through the weak references, so nothing keeps them alive.
    let told: CollapseListener[] | null = null;
    // Always the first one left: a tear-down can reach subscribers (pressure$, usage$) that
    // close other participants of this account meanwhile, so no pointer is kept across it.
    for (let p = rec.firstParticipant; p !== null; p = rec.firstParticipant) {
      const participant = p.participant() as Partial<CollapseListener> | undefined;
      if (typeof participant?.accountCollapsed === 'function') (told ??= []).push(participant as CollapseListener);
      released += this._teardownParticipant(p, true);
    }
    unlinkAccount(rec);
    this.openAccounts.delete(rec);
    // One transaction: the books are whole again before any subscriber hears of it.
    if (released !== releasedEarlier) this.settle(releasedEarlier - released);
    if (reason === 'reclaimed') this.counters.accountsCollapsed++;
    if (this.eventSubject.observed) this.eventSubject.next(named({ type: 'collapse', account: rec.id, reason, released }, rec.name));
    const listeners = rec.collapseListeners;
    rec.collapseListeners = null;
    if (listeners) {
      for (const listener of listeners) listener.accountCollapsed(reason);
    }
    if (told) {
      for (const participant of told) participant.accountCollapsed(reason);
    }
  }

  /** The one fold over the books: every claim, release and tear-down goes through here. */
  private fold(rec: ParticipantRecord, delta: number): void {
    this.book(rec, delta);
    this.settle(delta);
  }

  /** The counters of a change, and nothing else: no participant or subscriber code runs. */
  private book(rec: ParticipantRecord, delta: number): void {
    rec.used += delta;
    rec.account.used += delta;
    this.usedBytes += delta;
    if (delta < 0 && (rec.used < 0 || rec.account.used < 0 || this.usedBytes < 0)) this.corrupt();
  }

  /** What a change of `delta` bytes leads to, once the books are whole again. */
  private settle(delta: number): void {
    if (this.state !== 'running') return;
    const used = this.usedBytes;
    // The common case, between the alarms with nobody watching usage$, costs two compares.
    if (used > this.claimAlarm || used <= this.releaseAlarm || this.usageWatchers !== 0) this.consequences(delta);
    else if (delta < 0) this.stalled = false;
  }

  /** What follows a change of the books: pressure edges, a usage snapshot, reclamation. */
  private consequences(delta: number): void {
    const used = this.usedBytes;
    const { softMax, lowWater, max } = this.config;
    if (this.highPressure ? used <= lowWater : used > softMax) {
      this.highPressure = !this.highPressure;
      this.pressureSubject.next(this.highPressure ? 'high' : 'normal');
    }
    this.claimAlarm = this.highPressure ? max : softMax;
    this.releaseAlarm = this.highPressure ? lowWater : -1;
    // Participants that answered 'partial' without freeing anything may hold new data by now.
    if (this.stalled && used > this.stalledAt + (max - lowWater)) this.stalled = false;
    const startRun = used > max && !this.reclaimPending && !this.reclaimRunning && !this.stalled;
    if (startRun) this.reclaimPending = true; // so that the snapshot below says so
    else if (delta < 0 && used <= max) this.stalled = false;
    if (this.usageWatchers !== 0) this.usageSubject.next(this.snapshot());
    if (startRun) this.scheduleReclamation();
  }

  private corrupt(): void {
    this.state = 'corrupted';
    this.counting = false;
    this.scheduled?.unsubscribe();
    this.scheduled = null;
    this.reclaimPending = false;
  }

  private snapshot(): Usage {
    const { max, lowWater } = this.config;
    return {
      used: this.usedBytes,
      max,
      lowWater,
      pressure: this.tracking ? this.usedBytes / max : 0,
      reclaiming: this.reclaimPending || this.reclaimRunning,
    };
  }

  private participantError(rec: ParticipantRecord, fault: ParticipantFault, error?: unknown): void {
    this.counters.participantErrors++;
    if (this.eventSubject.observed) {
      const event: MemquotaEvent =
        error === undefined
          ? { type: 'participant-error', account: rec.account.id, fault }
          : { type: 'participant-error', account: rec.account.id, fault, error };
      this.eventSubject.next(named(event, rec.account.name));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Reclamation

  private scheduleReclamation(): void {
    this.reclaimPending = true;
    const action = this.scheduler.schedule(() => {
      this.scheduled = null;
      this.reclaimPending = false;
      void this.runReclamation();
    });
    // A synchronous scheduler has run (and finished) the action already.
    if (this.reclaimPending) this.scheduled = action;
  }

  private resolveSettled(): void {
    if (this.reclaimPending || this.reclaimRunning) return;
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * A guard asks for a run: oldest-first down to `downTo`, among accounts whose oldest data is
   * older than `olderThan` when given. Several requests merge (the lowest target, the widest
   * filter); one made during a run starts a new run after it.
   */
  // wiring for heapGuard/staleness: ported by the lead onto the split core
  private requestReclaim(cause: ReclaimCause, downTo: number, olderThan: number | undefined): void {
    if (this.state !== 'running' || !this.tracking || this.usedBytes <= downTo) return;
    const old = this.request;
    this.request =
      old === null
        ? { cause, downTo, olderThan }
        : {
            cause: olderThan === undefined ? cause : old.cause,
            downTo: Math.min(old.downTo, downTo),
            olderThan: olderThan === undefined || old.olderThan === undefined ? undefined : Math.max(old.olderThan, olderThan),
          };
    if (!this.reclaimPending && !this.reclaimRunning) this.scheduleReclamation();
  }

  private async runReclamation(): Promise<void> {
    // wiring for heapGuard/staleness: a guard's request, or the quota, or nothing to do.
    const request = this.request;
    this.request = null;
    const quota = this.usedBytes > this.config.max;
    if (this.state !== 'running' || (!quota && (request === null || this.usedBytes <= request.downTo))) {
      this.resolveSettled();
      return;
    }
    const cause: ReclaimCause = request !== null && (!quota || (request.cause === 'heap' && request.downTo < this.config.lowWater)) ? request.cause : 'quota';
    this.runDownTo = request === null ? undefined : quota ? Math.min(this.config.lowWater, request.downTo) : request.downTo;
    this.runOlderThan = quota ? undefined : request!.olderThan;
    this.reclaimRunning = true; // before any participant code runs (getOldest may tear one down)
    let startedAt: number;
    let victims = 0;
    let outcome: 'low-water' | 'no-candidate' | 'shutdown' = 'no-candidate';
    try {
      this.candidateAppeared = false;
      let heap = this.buildCandidates();
      if (heap.size === 0 && this.runOlderThan !== undefined) {
        // A look for stale data that found none is not a run.
        this.runDownTo = this.runOlderThan = undefined;
        this.reclaimRunning = false;
        if (this.state === 'running') this.consequences(0);
        this.resolveSettled();
        return;
      }
      this.counters.reclaimRuns++;
      if (cause === 'heap') this.counters.heapGuardRuns++;
      startedAt = this.clock();
      if (this.eventSubject.observed) {
        this.eventSubject.next({ type: 'reclaim-start', cause, used: this.usedBytes, max: this.config.max, lowWater: this.runDownTo ?? this.config.lowWater });
      }
      let rebuilt = false;
      for (;;) {
        if (this.state !== 'running') {
          outcome = 'shutdown';
          break;
        }
        if (this.usedBytes <= (this.runDownTo ?? this.config.lowWater)) {
          outcome = 'low-water';
          break;
        }
        const victim = this.popVictim(heap);
        if (victim === undefined) {
          // Candidates that appeared during the run (a reclaim() or a subscriber claimed) get one
          // more look; only one, so a participant that keeps refilling cannot keep the run alive.
          if (rebuilt || !this.candidateAppeared) break;
          rebuilt = true;
          this.candidateAppeared = false;
          heap = this.buildCandidates();
          continue;
        }
        victims++;
        this.counters.victims++;
        const pending = this.reclaimVictim(victim, this.victimKey, heap);
        if (pending !== undefined) await pending;
      }
    } catch (err) {
      // Every participant callback is guarded, so reaching here is a bug in the tracker: stop
      // trusting the books rather than crash the process.
      this.corruption = err;
      this.corrupt();
      this.reclaimRunning = false;
      this.resolveSettled();
      return;
    }
    this.reclaimRunning = false;
    if (cause === 'quota' && outcome === 'no-candidate' && this.usedBytes > this.config.lowWater) {
      this.stalled = true;
      this.stalledAt = this.usedBytes;
    }
    this.runDownTo = this.runOlderThan = undefined;
    if (this.eventSubject.observed) this.eventSubject.next({ type: 'reclaim-end', used: this.usedBytes, victims, outcome, durationMs: this.clock() - startedAt });
    if (this.state === 'running') this.consequences(0);
    if (this.request !== null && this.state === 'running' && !this.reclaimPending) this.scheduleReclamation(); // wiring for heapGuard/staleness
    this.resolveSettled();
  }

  /**
   * The heap key of an account: its oldest data (smallest first) or minus its bytes.
   * `undefined` = not a candidate. Reads every own participant; tears down the faulty ones.
   */
  private keyOf(acc: AccountRecord): number | undefined {
    if (this.policy === 'largest') {
      // Only collected participants matter here; tearing one down reaches subscribers, which
      // may change the list, so several are walked on a copy.
      if (acc.participantCount === 1) this.checkCollected(acc.firstParticipant!);
      else for (const p of participantsOf(acc)) this.checkCollected(p);
      return acc.used > 0 ? -acc.used : undefined;
    }
    return this.oldestOf(acc);
  }

  /** An account's oldest data (its own participants'), or `undefined` for none. */
  private oldestOf(acc: AccountRecord): number | undefined {
    // getOldest() is participant code, which may change the list: walk a copy when there
    // are several (one participant, the common case, needs none).
    if (acc.participantCount === 1) return this.ageOf(acc.firstParticipant!);
    let oldest: number | undefined;
    for (const p of participantsOf(acc)) {
      const age = p.live ? this.ageOf(p) : undefined;
      if (age !== undefined && (oldest === undefined || age < oldest)) oldest = age;
    }
    return oldest;
  }

  /**
   * A participant's data age, or `undefined` for none. A collected participant, or one whose
   * `getOldest()` throws, is torn down; one that says "no data" while holding more than the
   * slop is reported and counts as the oldest.
   */
  private ageOf(p: ParticipantRecord): number | undefined {
    const participant = p.participant();
    if (participant === undefined) {
      this.collectGarbage(p);
      return undefined;
    }
    let age: number | undefined;
    try {
      age = participant.getOldest();
    } catch (err) {
      this.participantError(p, 'getOldest-threw', err);
      this._teardownParticipant(p);
      return undefined;
    }
    if (typeof age === 'number' && !Number.isNaN(age)) return age;
    if (p.used > NO_DATA_SLOP) {
      this.participantError(p, 'no-data-but-claimed');
      return -Infinity;
    }
    return undefined;
  }

  /** Tears `p` down if its participant was garbage-collected. */
  private checkCollected(p: ParticipantRecord): void {
    if (p.live && p.participant() === undefined) this.collectGarbage(p);
  }

  private collectGarbage(p: ParticipantRecord): void {
    this.participantError(p, 'garbage-collected');
    this._teardownParticipant(p);
  }

  private buildCandidates(): MinHeap<AccountRecord> {
    this.keysCheckedAt = this.releases;
    const keys: number[] = [];
    const accounts: AccountRecord[] = [];
    for (const acc of this.openAccounts) {
      if (acc.state !== 'open') continue;
      const key = this.keyOf(acc);
      // wiring for heapGuard/staleness: a stale run considers only accounts with data older than the cutoff
      if (key !== undefined && this.runOlderThan !== undefined && !((this.policy === 'oldest' ? key : this.oldestOf(acc))! < this.runOlderThan)) continue;
      if (key !== undefined) {
        keys.push(key);
        accounts.push(acc);
      }
    }
    return new MinHeap(keys, accounts);
  }

  /** Pops the best open candidate whose key still holds (ages only grow, so a stale key is pushed back). */
  private popVictim(heap: MinHeap<AccountRecord>): AccountRecord | undefined {
    for (;;) {
      const acc = heap.pop();
      if (acc === undefined) return undefined;
      if (acc.state !== 'open') continue;
      if (this.policy === 'oldest' && this.releases === this.keysCheckedAt && acc.participantCount !== 0) {
        this.victimKey = heap.lastKey;
        return acc;
      }
      const key = this.keyOf(acc);
      if (key === undefined) continue;
      if (this.runOlderThan !== undefined && this.policy === 'oldest' && !(key < this.runOlderThan)) continue; // no longer stale
      const next = heap.peekKey();
      if (key > heap.lastKey && next !== undefined && key > next) {
        heap.push(key, acc);
        continue;
      }
      this.victimKey = key;
      return acc;
    }
  }

  /**
   * Asks the victim and every descendant to reclaim, all at once. Returns a promise when some
   * answer is asynchronous, `undefined` when everything was settled synchronously.
   */
  private reclaimVictim(victim: AccountRecord, key: number, heap: MinHeap<AccountRecord>): Promise<void> | undefined {
    const targets: AccountRecord[] = [victim];
    if (victim.children.size !== 0) {
      const seen = new Set(targets);
      for (let i = 0; i < targets.length; i++) {
        for (const child of targets[i]!.children) {
          if (!seen.has(child)) {
            seen.add(child);
            targets.push(child);
          }
        }
      }
    }
    if (this.eventSubject.observed) {
      this.eventSubject.next(
        named(
          { type: 'victim', account: victim.id, oldest: this.policy === 'oldest' ? key : undefined, bytes: victim.used, accounts: targets.length },
          victim.name,
        ),
      );
    }
    const before = this.usedBytes;
    const victimBytes = victim.used;
    for (const acc of targets) {
      acc.reclaiming = true;
      acc.heldWhenAsked = acc.used;
      acc.answeredPartial = false;
    }
    let pending: PromiseLike<void>[] | null = null;
    for (const acc of targets) {
      // A copy: a reclaim() may register new participants in this account meanwhile.
      for (const p of participantsOf(acc)) {
        if (!p.live) continue;
        const participant = p.participant();
        if (participant === undefined) {
          this.collectGarbage(p);
          continue;
        }
        let answer: Reclaimed | PromiseLike<Reclaimed>;
        try {
          answer = participant.reclaim();
        } catch (err) {
          this.participantError(p, 'reclaim-threw', err);
          this._teardownParticipant(p);
          continue;
        }
        if (isThenable(answer)) {
          (pending ??= []).push(
            Promise.resolve(answer).then(
              (settled) => this.settleAnswer(p, settled),
              (err: unknown) => {
                this.participantError(p, 'reclaim-threw', err);
                this._teardownParticipant(p);
              },
            ),
          );
        } else {
          this.settleAnswer(p, answer);
        }
      }
    }
    if (pending === null) {
      this.finishVictim(targets, victim, victimBytes, before, heap);
      return undefined;
    }
    return Promise.all(pending).then(() => this.finishVictim(targets, victim, victimBytes, before, heap));
  }

  /** Every answer is in: tear down what collapsed; a partial victim goes back in the heap. */
  private finishVictim(targets: AccountRecord[], victim: AccountRecord, victimBytes: number, before: number, heap: MinHeap<AccountRecord>): void {
    for (const acc of targets) {
      acc.reclaiming = false;
      if (acc.state === 'open' && !acc.answeredPartial) this._teardownAccount(acc, 'reclaimed', Math.max(0, acc.heldWhenAsked - acc.used));
    }
    if (this.usedBytes < before) this.counters.bytesReclaimed += before - this.usedBytes;
    // A partial victim that freed something goes back in the heap with its new key.
    if (victim.state === 'open' && victim.used < victimBytes) {
      const newKey = this.keyOf(victim);
      if (newKey !== undefined) heap.push(newKey, victim);
    }
  }

  private settleAnswer(p: ParticipantRecord, answer: unknown): void {
    if (answer === 'partial') {
      if (p.live) p.account.answeredPartial = true;
      return;
    }
    if (answer !== 'collapsing') this.participantError(p, 'reclaim-invalid-answer', new TypeError(`reclaim() answered ${String(answer)}`));
    this._teardownParticipant(p);
  }
}
