/**
 * Reclamation: choosing victims oldest-first and asking them to free memory.
 *
 * ## Scheduling
 * The tracker's reclamation state is one union ({@link Schedule}):
 * `idle` → `pending` (a run is scheduled on the tracker's scheduler, never inside the
 * bookkeeping) → `running` (one {@link Run} object) → `idle`, or `stalled` when a run ended
 * with no candidate left while `used` was still over `lowWater`: a stalled tracker does not
 * rescan on every claim; a release, a new participant, a participant that starts holding
 * data, or growth by one hysteresis band past the stall re-arm it.
 *
 * ## A run
 * A run owns its heap of candidate accounts and every piece of scratch state; the account
 * records carry none. It moves through named steps:
 * 1. **scan**: every open account's key (its own participants' oldest data, or minus its bytes
 *    under `'largest'`) goes into a min-heap, in batches;
 * 2. **choose**: pop the best candidate, re-reading its key when some release happened since
 *    it was read (ages only grow: a stale key is pushed back);
 * 3. **ask**: the victim and all its descendants are asked to `reclaim()`; answers are analysed
 *    into a value, and a faulty participant goes through one step, `dropFaulty`;
 * 4. **settle**: once every answer is in (or the reclaim deadline passed), accounts that did not
 *    answer `'partial'` are torn down; a partial victim that changed goes back in the heap.
 * Accounts that start holding data during the run (a new claim, a new participant) are
 * pushed into the heap before the next choice, so oldest-first holds while the run goes on.
 * The run stops at `downTo` (`lowWater`), when no candidate is left, or after as many
 * fruitless victims in a row as there are accounts (a participant that refills as fast as it
 * frees cannot keep a run alive).
 *
 * ## Yielding
 * A run never blocks the event loop for long: after a batch of victims (or of scanned
 * accounts) that took {@link BATCH_MS} ms, or {@link BATCH_VICTIMS} victims, it yields a
 * macrotask (`setImmediate`, else `setTimeout(0)`). With the `yieldScheduler`
 * option it yields through an action on that scheduler instead, and batches are counted only
 * (every {@link BATCH_VICTIMS} victims, 8192 scanned accounts), never timed: with a virtual
 * scheduler in specs, yields are deterministic. Claims and releases that arrive meanwhile are
 * booked as usual; accounts that start holding data are pushed into the heap before the next
 * choice, so the oldest is still taken first.
 *
 * ## Reentrancy
 * `getOldest()` must only read. `reclaim()` may call any handle (claim, release, close,
 * destroy, newAccount); the run reads `used` afresh after every answer. An answer that never
 * settles is cut off by the reclaim deadline (`reclaimTimeout`): a `reclaim()` that awaits
 * `tracker.settled()` therefore does not deadlock; it waits until the deadline.
 *
 * @module
 * Internal: not part of the public API. (Not tagged as such: with `stripInternal`, a tag in
 * the file's first comment strips its first import from the declarations.)
 */
import type { SchedulerLike, Subscription } from 'rxjs';
import { participantsOf, type AccountRecord, type Books, type ParticipantRecord } from './books.js';
import { MinHeap } from './heap.js';
import { named, type Signals } from './signals.js';
import type { ParticipantFault, ReclaimCause, Reclaimed, VictimPolicy } from './types.js';

/**
 * A participant that says it holds no data while the books say it holds more than this many
 * bytes is treated as faulty and becomes a very old candidate.
 */
export const NO_DATA_SLOP = 4096;

/** A batch of a run ends after this many ms of work (then the run yields). */
export const BATCH_MS = 4;
/** A batch of a run ends after this many victims at most. */
export const BATCH_VICTIMS = 512;
/** Accounts scanned per batch at most. */
const BATCH_SCAN = 8192;

/** The tracker's reclamation state. */
export type Schedule =
  | { readonly kind: 'idle' }
  | { readonly kind: 'pending'; action: Subscription | null; request: Request }
  | { readonly kind: 'running'; readonly run: Run }
  | { readonly kind: 'stalled'; readonly at: number };

/** What a run is asked to do. */
export interface Request {
  cause: ReclaimCause;
  /** Reclaim until `used` is at or below this (and `lowWater` when `toLowWater`). */
  downTo: number;
  /** Whether the run also goes down to the current `lowWater` (a quota run; follows `reconfigure`). */
  toLowWater: boolean;
  /** Only accounts whose oldest data is older than this (tracker clock), when given. */
  olderThan: number | undefined;
}

/** What a participant's data age analysis found when it is not a candidate's key (a number). */
export type Age =
  | { readonly kind: 'faulty'; readonly fault: ParticipantFault; readonly error?: unknown }
  | { readonly kind: 'no-data' };

const NO_DATA: Age = { kind: 'no-data' };
const GONE: Age = { kind: 'faulty', fault: 'garbage-collected' };

/** The tracker's counters. */
export interface Counters {
  reclaimRuns: number;
  victims: number;
  bytesReclaimed: number;
  accountsCollapsed: number;
  participantErrors: number;
  heapGuardRuns: number;
  staleRuns: number;
}

/** What reclamation needs from its tracker. */
export interface ReclaimContext {
  readonly books: Books;
  readonly signals: Signals;
  readonly counters: Counters;
  readonly policy: VictimPolicy;
  readonly scheduler: SchedulerLike;
  /** ms a victim's participants have to answer; `Infinity` for no deadline. */
  readonly reclaimTimeout: number;
  /** Where a run yields between batches; `undefined`: a macrotask. */
  readonly yieldScheduler: SchedulerLike | undefined;
  clock(): number;
  max(): number;
  lowWater(): number;
  /** A participant fault: counted and reported (the books are already right). */
  reportFault(p: ParticipantRecord, fault: ParticipantFault, error?: unknown): void;
  /** A run ended (or a pending one was dropped): re-derive what follows, resolve `settled()`. */
  afterRun(): void;
}

/**
 * The next turn of the event loop (`setImmediate`, else `setTimeout(0)`). Not unref'd on
 * purpose: it runs at the very next turn, so it cannot keep an idle process alive, while an
 * unref'd one would let a process that awaits `settled()` exit in the middle of a run. (The
 * reclaim deadline, which can be long, is unref'd.)
 */
function macrotask(): Promise<void> {
  return new Promise<void>((resolve) => {
    const g = globalThis as { setImmediate?: (f: () => void) => unknown };
    if (typeof g.setImmediate === 'function') g.setImmediate(resolve);
    else setTimeout(resolve, 0);
  });
}

/** A safe description of an answer (a revoked Proxy cannot even be stringified). */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return typeof value;
}

/** One account asked to reclaim, with what it held when asked and whether it stays. */
interface Target {
  readonly acc: AccountRecord;
  readonly held: number;
  partial: boolean;
}

/** The tracker's reclamation: its scheduling state and the current run. */
export class Reclaimer {
  #schedule: Schedule = { kind: 'idle' };
  readonly #ctx: ReclaimContext;

  constructor(ctx: ReclaimContext) {
    this.#ctx = ctx;
  }

  get schedule(): Schedule {
    return this.#schedule;
  }

  /** Whether a run is scheduled or running. */
  get busy(): boolean {
    const kind = this.#schedule.kind;
    return kind === 'pending' || kind === 'running';
  }

  get stalled(): boolean {
    return this.#schedule.kind === 'stalled';
  }

  /** Something changed that a stalled tracker should look at again. */
  unstall(): void {
    if (this.#schedule.kind === 'stalled') this.#setSchedule({ kind: 'idle' });
  }

  /** A stalled tracker re-arms once `used` grows a hysteresis band past the stall. */
  checkStall(used: number): void {
    const s = this.#schedule;
    if (s.kind === 'stalled' && used > s.at + (this.#ctx.max() - this.#ctx.lowWater())) this.#setSchedule({ kind: 'idle' });
  }

  /** An account may hold data the heap does not know. */
  candidateAppeared(acc: AccountRecord): void {
    const s = this.#schedule;
    if (s.kind === 'running') s.run.fresh.push(acc);
    else if (s.kind === 'stalled') this.#setSchedule({ kind: 'idle' });
  }

  /** `acc`'s bytes when asked, while its answer is pending. */
  heldWhenAsked(acc: AccountRecord): number | undefined {
    const s = this.#schedule;
    return s.kind === 'running' ? s.run.heldWhenAsked(acc) : undefined;
  }

  /** `acc` became a descendant of an account being asked: it goes with it. */
  joinedVictim(acc: AccountRecord): void {
    const s = this.#schedule;
    if (s.kind === 'running') s.run.include(acc);
  }

  /**
   * Starts (or extends) reclamation: `pending` on the scheduler when idle or stalled; a
   * pending or running one is extended to `downTo` and `olderThan`.
   */
  request(cause: ReclaimCause, downTo: number, olderThan: number | undefined): void {
    const s = this.#schedule;
    const toLowWater = cause === 'quota';
    if (s.kind === 'pending') {
      extend(s.request, downTo, olderThan, toLowWater);
      return;
    }
    if (s.kind === 'running') {
      extend(s.run.request, downTo, olderThan, toLowWater);
      return;
    }
    const pending: Schedule = { kind: 'pending', action: null, request: { cause, downTo: toLowWater ? Infinity : downTo, olderThan, toLowWater } };
    this.#setSchedule(pending);
    const action = this.#ctx.scheduler.schedule(() => {
      if (this.#schedule !== pending) return;
      this.#setSchedule({ kind: 'idle' });
      void this.#run(pending.request);
    });
    // A synchronous scheduler has run (and maybe finished) the action already.
    if (this.#schedule === pending) pending.action = action;
  }

  /** Drops a pending run and tells a running one to stop (shutdown, corruption). */
  stop(): void {
    const s = this.#schedule;
    if (s.kind === 'pending') s.action?.unsubscribe();
    if (s.kind === 'running') s.run.stop();
    this.#setSchedule({ kind: 'idle' });
  }

  #setSchedule(s: Schedule): void {
    this.#schedule = s;
    this.#ctx.books.watchNewData = s.kind === 'running' || s.kind === 'stalled';
  }

  #run(request: Request): void {
    const ctx = this.#ctx;
    const books = ctx.books;
    if (!books.running || (request.cause === 'quota' && books.used <= ctx.max()) || books.used <= targetOf(request, ctx.lowWater())) {
      ctx.afterRun();
      return;
    }
    let startedAt = 0;
    let started = false;
    // A run is counted and announced when it starts; a stale look (limited by `olderThan`) only
    // once it has found something old enough: a look that finds nothing is no run (no events,
    // no counters), or a watch ticking under pressure would flood events$ and the metrics.
    const start = (): void => {
      if (started) return;
      started = true;
      ctx.counters.reclaimRuns++;
      if (request.cause === 'heap') ctx.counters.heapGuardRuns++;
      else if (request.cause === 'stale') ctx.counters.staleRuns++;
      startedAt = ctx.clock();
      ctx.signals.event({ type: 'reclaim-start', cause: request.cause, used: books.used, max: ctx.max(), lowWater: targetOf(request, ctx.lowWater()) });
    };
    const run = new Run(ctx, request, start);
    this.#setSchedule({ kind: 'running', run });
    if (request.olderThan === undefined) start();
    const isCurrent = (): boolean => {
      const current = this.#schedule;
      return current.kind === 'running' && current.run === run;
    };
    drive(
      run.steps(),
      (outcome) => {
        if (isCurrent()) {
          // Only a run that considered every account can say none is left.
          const stall = outcome === 'no-candidate' && run.request.olderThan === undefined && books.used > ctx.lowWater();
          this.#setSchedule(stall ? { kind: 'stalled', at: books.used } : { kind: 'idle' });
        }
        if (started) ctx.signals.event({ type: 'reclaim-end', used: books.used, victims: run.victims, outcome, durationMs: ctx.clock() - startedAt });
        ctx.afterRun();
      },
      (err) => {
        // Every participant callback is guarded, so reaching here is a bug in the tracker: stop
        // trusting the books rather than crash the process.
        books.stop('corrupted', err);
        if (isCurrent()) this.#setSchedule({ kind: 'idle' });
        ctx.afterRun();
      },
    );
  }
}

/**
 * Runs a run's steps: synchronously while no step has to wait (so that with a synchronous
 * scheduler a run whose answers are all synchronous ends inside the claim that crossed `max`),
 * resuming after each promise a step yields.
 */
function drive<T>(steps: Generator<Promise<void> | undefined, T>, done: (value: T) => void, failed: (err: unknown) => void): void {
  const resume = (): void => {
    let step: IteratorResult<Promise<void> | undefined, T>;
    try {
      step = steps.next();
      while (!step.done && step.value === undefined) step = steps.next();
    } catch (err) {
      failed(err);
      return;
    }
    if (step.done) done(step.value);
    else step.value!.then(resume, failed);
  };
  resume();
}

/** The mark a run reclaims down to. */
export function targetOf(request: Request, lowWater: number): number {
  return request.toLowWater ? Math.min(lowWater, request.downTo) : request.downTo;
}

function extend(request: Request, downTo: number, olderThan: number | undefined, toLowWater: boolean): void {
  if (toLowWater) {
    request.toLowWater = true;
    request.olderThan = undefined; // a quota run considers every account
  } else if (downTo < request.downTo) request.downTo = downTo;
  if (request.olderThan !== undefined) request.olderThan = olderThan === undefined ? undefined : Math.max(request.olderThan, olderThan);
}

/** One reclamation run: owns its heap and scratch state. */
export class Run {
  readonly request: Request;
  victims = 0;
  /** Accounts that may hold data the heap does not know (pushed before the next choice). */
  fresh: AccountRecord[] = [];
  readonly #ctx: ReclaimContext;
  readonly #heap = new MinHeap<AccountRecord>();
  /** `books.releases` when the heap's keys were last known true. */
  #keysCheckedAt = -1;
  /** The accounts being asked, while answers are pending (most victims: one). */
  #asked: Target[] | null = null;
  /** An index of `#asked` when a victim has many descendants. */
  #askedIndex: Map<AccountRecord, Target> | null = null;
  #stopped = false;
  #batchStart = 0;
  #batchVictims = 0;
  /** Batches end on time too (not with a `yieldScheduler`: there they are counted, deterministic). */
  readonly #timed: boolean;

  /** Called before the first victim is asked (a stale look starts counting there). */
  readonly #onVictim: () => void;

  constructor(ctx: ReclaimContext, request: Request, onVictim: () => void) {
    this.#ctx = ctx;
    this.#onVictim = onVictim;
    this.#timed = ctx.yieldScheduler === undefined;
    this.request = { ...request };
  }

  stop(): void {
    this.#stopped = true;
  }

  heldWhenAsked(acc: AccountRecord): number | undefined {
    return this.#target(acc)?.held;
  }

  /**
   * Includes `acc` and its descendants in the victim being asked (they became descendants of
   * it while its answers were pending): they are torn down with it unless it stays.
   */
  include(acc: AccountRecord): void {
    const asked = this.#asked;
    if (asked === null) return;
    const stack = [acc];
    while (stack.length > 0) {
      const next = stack.pop()!;
      if (this.#target(next) !== undefined) continue;
      const target: Target = { acc: next, held: next.used, partial: false };
      asked.push(target);
      this.#askedIndex?.set(next, target);
      for (const child of next.children) stack.push(child);
    }
  }

  #target(acc: AccountRecord): Target | undefined {
    const asked = this.#asked;
    if (asked === null) return undefined;
    if (this.#askedIndex !== null) return this.#askedIndex.get(acc);
    for (const target of asked) if (target.acc === acc) return target;
    return undefined;
  }

  /**
   * The whole run, as steps: yields a promise when it has to wait (answers, a yield between
   * batches); returns why it stopped.
   */
  *steps(): Generator<Promise<void> | undefined, 'low-water' | 'no-candidate' | 'shutdown'> {
    const books = this.#ctx.books;
    this.#batchStart = performance.now();
    // Step 1, scan: every open account with data goes into the heap, in batches.
    this.#keysCheckedAt = books.releases;
    let scanned = 0;
    for (const acc of books.accounts) {
      if (this.#stopped) return 'shutdown';
      this.#consider(acc);
      if ((++scanned & 255) === 0 && (scanned >= BATCH_SCAN || (this.#timed && performance.now() - this.#batchStart > BATCH_MS))) {
        scanned = 0;
        yield this.#yield(); // releases meanwhile make keys stale: they are re-read at the pop
      }
    }
    let fruitless = 0;
    let lowest = books.used;
    for (;;) {
      if (this.#stopped || !books.running) return 'shutdown';
      if (books.used <= targetOf(this.request, this.#ctx.lowWater())) return 'low-water';
      if (this.fresh.length !== 0) this.#pushFresh();
      const victim = this.#choose();
      if (victim === undefined) return 'no-candidate';
      this.victims++;
      this.#ctx.counters.victims++;
      const answers = this.#ask(victim, this.#chosenKey);
      if (answers !== undefined) yield answers;
      if (books.used < lowest) {
        lowest = books.used;
        fruitless = 0;
      } else if (++fruitless > books.accounts.size + 8) {
        return 'no-candidate';
      }
      if (++this.#batchVictims >= BATCH_VICTIMS || (this.#timed && (this.#batchVictims & 15) === 0 && performance.now() - this.#batchStart > BATCH_MS)) {
        yield this.#yield();
      }
    }
  }

  #yield(): Promise<void> {
    const scheduler = this.#ctx.yieldScheduler;
    const wait = scheduler === undefined ? macrotask() : new Promise<void>((resolve) => scheduler.schedule(() => resolve()));
    return wait.then(() => {
      this.#batchVictims = 0;
      this.#batchStart = performance.now();
    });
  }

  /** Pushes `acc` with its key when it is a candidate. */
  #consider(acc: AccountRecord): void {
    if (acc.state !== 'open') return;
    const key = this.#keyOf(acc);
    if (key !== undefined) this.#heap.push(key, acc);
  }

  #pushFresh(): void {
    const fresh = this.fresh;
    this.fresh = [];
    for (const acc of fresh) this.#consider(acc);
  }

  /** The key of the account `#choose` returned last (no object per victim). */
  #chosenKey = 0;

  /** Step 2: the best open candidate whose key still holds (its key in `#chosenKey`). */
  #choose(): AccountRecord | undefined {
    const heap = this.#heap;
    const books = this.#ctx.books;
    for (;;) {
      const acc = heap.pop();
      if (acc === undefined) return undefined;
      if (acc.state !== 'open') continue;
      if (this.#ctx.policy === 'oldest' && books.releases === this.#keysCheckedAt && acc.firstParticipant !== null) {
        this.#chosenKey = heap.lastKey;
        return acc;
      }
      const key = this.#keyOf(acc);
      if (key === undefined) continue;
      const next = heap.peekKey();
      if (key > heap.lastKey && next !== undefined && key > next) {
        heap.push(key, acc);
        continue;
      }
      this.#chosenKey = key;
      return acc;
    }
  }

  /**
   * The heap key of an account: its oldest data (smallest first) or minus its bytes;
   * `undefined` = not a candidate. Faulty participants are dropped on the way.
   */
  #keyOf(acc: AccountRecord): number | undefined {
    const olderThan = this.request.olderThan;
    if (this.#ctx.policy === 'largest') {
      for (const p of acc.soleParticipant !== null ? [acc.firstParticipant!] : participantsOf(acc)) {
        if (p.live && p.participant() === undefined) this.#dropFaulty(p, 'garbage-collected');
      }
      if (!(acc.used > 0)) return undefined;
      // A stale run considers only accounts with data older than its cutoff, whatever the policy.
      if (olderThan !== undefined) {
        const oldest = this.#oldest(acc);
        if (oldest === undefined || !(oldest < olderThan)) return undefined;
      }
      return -acc.used;
    }
    const oldest = this.#oldest(acc);
    if (oldest !== undefined && olderThan !== undefined && !(oldest < olderThan)) return undefined;
    return oldest;
  }

  /** An account's oldest data (its own participants'), or `undefined` for none. */
  #oldest(acc: AccountRecord): number | undefined {
    let oldest: number | undefined;
    // getOldest() is participant code, which may change the list: walk a copy when there
    // are several (one participant, the common case, needs none).
    if (acc.soleParticipant !== null) oldest = this.#key(acc.firstParticipant!);
    else {
      for (const p of participantsOf(acc)) {
        const key = p.live ? this.#key(p) : undefined;
        if (key !== undefined && (oldest === undefined || key < oldest)) oldest = key;
      }
    }
    return oldest;
  }

  /** A participant's key, acting on the analysis. */
  #key(p: ParticipantRecord): number | undefined {
    const age = ageOf(p);
    if (typeof age === 'number') return age;
    if (age.kind === 'no-data') return undefined;
    // Data of unknown age is never skipped silently: reported, and it counts as the oldest.
    if (age.fault === 'no-data-but-claimed' || age.fault === 'invalid-age') {
      this.#ctx.reportFault(p, age.fault, age.error);
      return -Infinity;
    }
    this.#dropFaulty(p, age.fault, age.error);
    return undefined;
  }

  /**
   * The one step for a faulty participant: tear it down (if it is still there), then report
   * it (also when it went meanwhile: the fault happened).
   */
  #dropFaulty(p: ParticipantRecord, fault: ParticipantFault, error?: unknown): void {
    this.#ctx.books.teardownParticipant(p);
    this.#ctx.reportFault(p, fault, error);
  }

  /**
   * Step 3: asks the victim and every descendant to reclaim, all at once. Returns a promise
   * when some answer is asynchronous, `undefined` when everything was settled synchronously.
   */
  #ask(victim: AccountRecord, key: number): Promise<void> | undefined {
    const ctx = this.#ctx;
    const books = ctx.books;
    // Most victims are one account with no children: no list of targets then.
    let targets: AccountRecord[] | null = null;
    if (victim.children.size !== 0) {
      targets = [victim];
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
    this.#onVictim();
    if (ctx.signals.eventsObserved) {
      const event = { type: 'victim' as const, account: victim.id, oldest: ctx.policy === 'oldest' ? key : undefined, bytes: victim.used, accounts: targets === null ? 1 : targets.length };
      ctx.signals.event(named(event, victim.name));
    }
    const before = books.used;
    const victimBytes = victim.used;
    const asked: Target[] = targets === null ? [{ acc: victim, held: victimBytes, partial: false }] : targets.map((acc) => ({ acc, held: acc.used, partial: false }));
    this.#asked = asked;
    this.#askedIndex = asked.length > 8 ? new Map(asked.map((t) => [t.acc, t])) : null;
    this.#pending = null;
    this.#waits = null;
    if (targets === null) this.#askAccount(victim);
    else for (const acc of targets) this.#askAccount(acc);
    const waits = this.#waits as Promise<void>[] | null;
    if (waits === null) {
      this.#finish(asked, victim, key, victimBytes, before);
      return undefined;
    }
    const pending = this.#pending!;
    this.#pending = null;
    this.#waits = null;
    return this.#deadline(Promise.all(waits), pending).then(() => this.#finish(asked, victim, key, victimBytes, before));
  }

  /** Participants whose answers are pending, and the promises of their answers (one victim's). */
  #pending: Set<ParticipantRecord> | null = null;
  #waits: Promise<void>[] | null = null;

  /** Asks every live participant of `acc` (one, usually: then without copying the list). */
  #askAccount(acc: AccountRecord): void {
    if (acc.soleParticipant !== null) this.#askParticipant(acc.firstParticipant!);
    // A copy: a reclaim() may register new participants in this account meanwhile.
    else for (const p of participantsOf(acc)) this.#askParticipant(p);
  }

  #askParticipant(p: ParticipantRecord): void {
    if (!p.live) return;
    const answer = askOne(p);
    if (answer.kind === 'faulty') this.#dropFaulty(p, answer.fault, answer.error);
    else if (answer.kind === 'answer') this.#settle(p, answer.value);
    else {
      const pending = (this.#pending ??= new Set());
      pending.add(p);
      (this.#waits ??= []).push(
        answer.promise.then(
          (value) => {
            if (pending.delete(p)) this.#settle(p, value);
          },
          (err: unknown) => {
            if (pending.delete(p)) this.#dropFaulty(p, 'reclaim-threw', err);
          },
        ),
      );
    }
  }

  /** Waits for the answers, or until the reclaim deadline: the silent ones count as collapsed. */
  #deadline(answers: Promise<unknown>, pending: Set<ParticipantRecord>): Promise<void> {
    const timeout = this.#ctx.reclaimTimeout;
    if (timeout === Infinity) return answers.then(() => undefined);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const p of [...pending]) {
          pending.delete(p);
          this.#dropFaulty(p, 'reclaim-timeout', new Error(`reclaim() did not answer within ${timeout} ms (the reclaimTimeout option)`));
        }
        resolve();
      }, timeout) as unknown as { unref?: () => void };
      timer.unref?.();
      void answers.then(() => {
        clearTimeout(timer as unknown as ReturnType<typeof setTimeout>);
        resolve();
      });
    });
  }

  #settle(p: ParticipantRecord, answer: unknown): void {
    if (answer === 'partial') {
      const target = this.#target(p.account);
      if (p.live && target !== undefined) target.partial = true;
      return;
    }
    if (answer !== 'collapsing') {
      this.#dropFaulty(p, 'reclaim-invalid-answer', new TypeError(`reclaim() answered ${describe(answer)}, not 'collapsing' or 'partial'`));
      return;
    }
    this.#ctx.books.teardownParticipant(p);
  }

  /** Step 4: every answer is in: tear down what collapsed; a partial victim that changed goes back. */
  #finish(asked: readonly Target[], victim: AccountRecord, key: number, victimBytes: number, before: number): void {
    const books = this.#ctx.books;
    for (const target of asked) {
      if (target.acc.state === 'open' && !target.partial) books.teardownAccount(target.acc, 'reclaimed');
    }
    this.#asked = null;
    this.#askedIndex = null;
    const counters = this.#ctx.counters;
    if (books.used < before) counters.bytesReclaimed += before - books.used;
    if (victim.state === 'open') {
      // A partial victim that freed something, or whose data changed meanwhile (it released
      // and claimed again), goes back in the heap with its new key.
      const newKey = this.#keyOf(victim);
      if (newKey !== undefined && (victim.used < victimBytes || newKey !== key)) this.#heap.push(newKey, victim);
    }
  }
}

/**
 * A participant's data age, analysed: a candidate's key (a number), a fault, or no data. Only
 * reads (the participant's `getOldest()` is participant code, guarded here).
 */
export function ageOf(p: ParticipantRecord): number | Age {
  const participant = p.participant();
  if (participant === undefined) return GONE;
  let age: unknown;
  try {
    age = participant.getOldest();
  } catch (err) {
    return { kind: 'faulty', fault: 'getOldest-threw', error: err };
  }
  if (typeof age === 'number' && age === age) return age; // a candidate: its key, no object
  if (age !== undefined) {
    return {
      kind: 'faulty',
      fault: 'invalid-age',
      error: new TypeError(`getOldest() returned ${describe(age)}, not a timestamp or undefined (does the tracker's clock return NaN?)`),
    };
  }
  if (p.used > NO_DATA_SLOP) return { kind: 'faulty', fault: 'no-data-but-claimed' };
  return NO_DATA;
}

/** A participant's answer to `reclaim()`, analysed inside the guard. */
type Answer =
  | { readonly kind: 'answer'; readonly value: unknown }
  | { readonly kind: 'pending'; readonly promise: Promise<Reclaimed> }
  | { readonly kind: 'faulty'; readonly fault: ParticipantFault; readonly error?: unknown };

const COLLAPSING: Answer = { kind: 'answer', value: 'collapsing' };
const PARTIAL: Answer = { kind: 'answer', value: 'partial' };

/** Calls `reclaim()`; every inspection of the answer (a `then` getter, a Proxy) is guarded. */
function askOne(p: ParticipantRecord): Answer {
  const participant = p.participant();
  if (participant === undefined) return { kind: 'faulty', fault: 'garbage-collected' };
  try {
    const value: unknown = participant.reclaim();
    if (value === 'collapsing') return COLLAPSING; // the common answers, without an object each
    if (value === 'partial') return PARTIAL;
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return { kind: 'answer', value };
    const then = (value as { then?: unknown }).then;
    if (typeof then !== 'function') return { kind: 'answer', value };
    const promise = new Promise<Reclaimed>((resolve, reject) => {
      try {
        then.call(value, resolve, reject);
      } catch (err) {
        reject(err);
      }
    });
    return { kind: 'pending', promise };
  } catch (err) {
    return { kind: 'faulty', fault: 'reclaim-threw', error: err };
  }
}

