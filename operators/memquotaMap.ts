/**
 * `memquotaMap`: `mergeMap` / `concatMap` whose waiting buffer and in-flight values are
 * charged to a memory quota account.
 *
 * @module
 */
import { from, Observable, type ObservableInput, type ObservedValueOf, type OperatorFunction, type Subscriber } from 'rxjs';
import type { Account } from '../lib/handles.js';
import { memoryCost } from '../lib/cost.js';
import { MemoryReclaimedError } from '../lib/errors.js';
import { claimShare, dropShare, registerShare, releaseShare, trackerOf, type Share } from '../lib/seam.js';
import type { CollapseReason, Participant, Reclaimed } from '../lib/types.js';
import { openStream } from './internal/accountArg.js';
import { CostRing } from './internal/costQueue.js';
import { OperatorSubscriber, type OperatorHandlers } from './internal/operatorSubscriber.js';
import { checkAccountArg, checkConcurrency, checkCost, checkedCost, checkOptions, type AccountArg } from './internal/options.js';
import { goneReason } from './internal/participantQueue.js';

/** Options of {@link memquotaMap}. */
export interface MemquotaMapOptions<T> {
  /**
   * How many inner observables may run at once: an integer ≥ 1, or `Infinity`. Default 1
   * (`concatMap`). Note that `mergeMap`'s default is `Infinity`; this operator exists to bound
   * memory, so it defaults to the bounded case.
   */
  concurrency?: number;
  /**
   * The bytes a source value holds while it waits or is in flight. Default `memoryCost`.
   * Must return a non-negative safe integer; anything else (or a throw) errors the subscriber.
   */
  cost?: (value: T) => number;
}

/**
 * Projects each source value to an observable, as `mergeMap` (`concatMap` at concurrency 1)
 * does, and charges every source value to a memory quota account from its arrival until its
 * inner observable completes, errors or is unsubscribed.
 *
 * <span class="informal">A `mergeMap` that dies first, not last, when its consumer stalls.</span>
 *
 * ```text
 * memquotaMap(account, (x) => inner(x))      concurrency 1, max: room for 3 values
 *
 * source:     -a--b--c--d--------
 * inner(a):    -1-2-3-...           (never completes)
 * result:     --1-2-3---#           # = MemoryReclaimedError('reclaimed')
 * source subs: ^---------!           the source and the inner are unsubscribed
 *
 * a is claimed from its arrival until its inner ends; b, c, d wait behind it, claimed too.
 * d passes max: the account with the oldest data (a's arrival) is reclaimed. With a quota
 * that never fills, the output is exactly mergeMap's (concatMap's at concurrency 1).
 * ```
 *
 * Each subscription registers one participant in the account (a factory `() => Account` gives
 * each subscription its own account, closed on teardown). A source value is claimed (its
 * `cost`) when it arrives and released when its inner observable completes, errors or is
 * unsubscribed. The participant's data age is the arrival time (`tracker.now()`) of the oldest
 * value still claimed, waiting or in flight. Values start in arrival order (FIFO) and `project`
 * receives the start index, as with `mergeMap`.
 *
 * Ends of the stream:
 * - reclaimed (the tracker chose this account, or an ancestor, as victim): waiting values are
 *   dropped, inner subscriptions and the source unsubscribed, everything released, and the
 *   subscriber errors with `MemoryReclaimedError('reclaimed')`;
 * - the account closed or the tracker shut down: the same, with `MemoryReclaimedError('closed')`
 *   or `MemoryReclaimedError('tracker-shutdown')`;
 * - `cost` or `project` throws, `cost` returns an invalid count (the `RangeError` of `claim`),
 *   an inner or the source errors: everything is released and the subscriber errors;
 * - unsubscribing frees everything (the participant is closed, and a factory account too).
 *
 * Order of ends, as `mergeMap`'s: the subscriber is told (`error`, `complete`) before the
 * source and the inners are torn down; an inner that completes is unsubscribed before the
 * next one starts. A value is stored before it is claimed (the claim can run user code, which
 * then sees it as this stream's data).
 *
 * Costs: claiming, queueing and the in-flight bookkeeping allocate nothing per value beyond the
 * inner's subscriber, which `mergeMap` allocates too (the in-flight links live on it); every
 * step is O(1). An idle subscription is one object plus its participant record.
 *
 * ## Example
 * ```ts
 * import { MemoryQuotaTracker, memquotaMap } from 'rxjs-memquota';
 * import { Subject, map, timer } from 'rxjs';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 64 * 1024 * 1024 });
 * const chunks = new Subject<Uint8Array>();
 * // One account per subscription: a stuck writer loses its own stream, not the process.
 * chunks
 *   .pipe(
 *     memquotaMap(() => tracker.newAccount(), (chunk) => timer(10).pipe(map(() => chunk.byteLength)), {
 *       concurrency: 4,
 *       cost: (chunk) => chunk.byteLength,
 *     }),
 *   )
 *   .subscribe({ next: (n) => console.log('wrote', n), error: (err) => console.log('dropped:', err.name) });
 * ```
 *
 * @see {@link memquota}
 * @see {@link MemoryReclaimedError}
 *
 * @param account The account to charge: an `Account` shared by every subscription, or a
 *   factory called once per subscription (that account is closed on teardown).
 * @param project Maps a source value and its index to an `ObservableInput`; the result's
 *   values are typed as with `mergeMap` (a union of inputs gives the union of their values).
 * @param options `concurrency` (default 1) and `cost` (default `memoryCost`).
 * @return An operator that maps as `mergeMap` does and holds its values under the quota.
 * @throws TypeError for an account, project or option of the wrong type; RangeError for a
 *   `concurrency` that is not an integer ≥ 1 or `Infinity` (at creation, not at subscription).
 */
export function memquotaMap<T, O extends ObservableInput<unknown>>(
  account: AccountArg,
  project: (value: T, index: number) => O,
  options: MemquotaMapOptions<T> = {},
): OperatorFunction<T, ObservedValueOf<O>> {
  checkAccountArg(account, 'memquotaMap');
  if (typeof project !== 'function') throw new TypeError(`memquotaMap: project must be a function, got ${typeof project}`);
  checkOptions(options, 'memquotaMap');
  const concurrency = checkConcurrency(options.concurrency, 'memquotaMap');
  const { cost = memoryCost as (value: T) => number } = options;
  checkCost(cost, 'memquotaMap');
  const settings: MapSettings<T, ObservedValueOf<O>> = {
    project: project as (value: T, index: number) => ObservableInput<ObservedValueOf<O>>,
    cost,
    concurrency,
    ownsAccount: typeof account === 'function',
  };

  return (source) =>
    new Observable<ObservedValueOf<O>>((subscriber) => {
      const stream = openStream(account, 'memquotaMap', subscriber, (acc) => new MapStream<T, ObservedValueOf<O>>(acc, settings, subscriber));
      if (stream === undefined) return;
      // Handed to the downstream subscriber before subscribing, so that a synchronous source
      // sees its subscriber closed as soon as the downstream unsubscribes (take(n)).
      subscriber.add(stream);
      source.subscribe(stream.upstream);
    });
}

type AnyStream = MapStream<unknown, unknown>;

/** The life of an in-flight value: claimed but not started, its inner running, completed. */
const PENDING = 0;
const RUNNING = 1;
const COMPLETED = 2;
type InFlightState = typeof PENDING | typeof RUNNING | typeof COMPLETED;

/** What every subscription of one `memquotaMap` operator shares. */
interface MapSettings<T, R> {
  readonly project: (value: T, index: number) => ObservableInput<R>;
  readonly cost: (value: T) => number;
  readonly concurrency: number;
  /** Whether each subscription owns its account (made by a factory, closed with it). */
  readonly ownsAccount: boolean;
}

/** The source side of every `memquotaMap` subscription (shared, no closures). */
const SOURCE: OperatorHandlers<AnyStream, unknown> = {
  onNext: (stream, value) => stream.sourceNext(value),
  onError: (stream, err) => stream.fail(err),
  onComplete: (stream) => stream.sourceComplete(),
};

/** The inner side: one {@link InFlight} per started value (shared handlers, no closures). */
const INNER: OperatorHandlers<AnyStream, unknown, InFlight<unknown, unknown>> = {
  onNext: (stream, value) => stream.innerNext(value),
  onError: (stream, err) => stream.fail(err),
  onComplete: (_stream, inner) => {
    inner.phase = COMPLETED;
  },
  // As mergeMap: the next value starts once the completed inner is torn down.
  onFinalize: (stream, inner) => {
    if (inner.phase === COMPLETED) stream.innerDone(inner);
  },
};

/**
 * One subscription of `memquotaMap`: the participant, the collapse listener and the logic,
 * in a single object without closures so that an idle stream stays small (the same choice
 * as `memquota`; STYLE's "state in closure variables" would cost a context and a dozen
 * closures per subscription). The source's and the inners' subscribers are
 * {@link OperatorSubscriber}s whose shared handlers call back here.
 *
 * The values it holds: `waiting` (a ring buffer, FIFO) and the in-flight list, an intrusive
 * doubly linked list of the inner subscribers in start order. Values start in arrival order
 * (the waiting queue is FIFO and nothing overtakes it, even reentrantly), so along the list
 * the arrival times are monotonic and the oldest in-flight value is the list's head. Inners
 * finish out of order under concurrency > 1: unlinking any one is O(1), so `getOldest` is
 * O(1) (head of the list, head of the ring) and nothing is left behind (a ring of in-flight
 * values would keep tombstones of finished inners behind a slow first one, without bound).
 * The links live on the inner subscriber, which exists anyway: no allocation beyond what
 * `mergeMap` allocates per inner.
 */
class MapStream<T, R> implements Participant {
  /** The source's subscriber: unsubscribed when the source ends or the stream ends. */
  readonly upstream: OperatorSubscriber<MapStream<T, R>, T>;
  /** Values waiting to start, FIFO; `null` until the first one waits. */
  private waiting: CostRing<T> | null = null;
  /** In-flight list: earliest started (oldest data) first. */
  private oldest: InFlight<T, R> | null = null;
  private newest: InFlight<T, R> | null = null;
  private active = 0;
  /** True once ended or torn down: every later notification is ignored. */
  private gone = false;
  private sourceDone = false;
  private index = 0;
  /** This stream's record in the books (claimed on without a handle). */
  private readonly share: Share;

  /** @throws what registration throws (closed account, shut-down tracker). */
  constructor(
    private readonly account: Account,
    private readonly settings: MapSettings<T, R>,
    private readonly destination: Subscriber<R>,
  ) {
    this.share = registerShare(account, this);
    this.upstream = new OperatorSubscriber(destination, SOURCE as unknown as OperatorHandlers<MapStream<T, R>, T>, this);
  }

  // Source side ---------------------------------------------------------------------------

  sourceNext(value: T): void {
    if (this.gone) return;
    const cost = this.settings.cost; // called as a plain function: user code never sees this object
    let bytes: number;
    try {
      bytes = checkedCost(cost(value));
    } catch (err) {
      return this.fail(err);
    }
    // Stored, then claimed: the claim can run user code, which must see the value as ours.
    // A claim throws before it runs any user code, so on a throw the newest value is ours.
    const share = this.share;
    const arrivedAt = trackerOf(share).now();
    if (this.canStart() && CostRing.lengthOf(this.waiting) === 0) {
      // Starts at once: stored as in flight (not yet started, so that a value pushed from the
      // claim's callbacks waits behind it), claimed, then started.
      const inner = new InFlight<T, R>(this.destination, INNER as unknown as OperatorHandlers<MapStream<T, R>, R, InFlight<T, R>>, this, bytes, arrivedAt);
      this.link(inner);
      try {
        claimShare(share, bytes);
      } catch (err) {
        this.unlink(inner);
        return this.claimFailed(err);
      }
      if (this.gone) return;
      this.start(inner, value);
      this.drain(); // what the claim's callbacks pushed meanwhile
      return;
    }
    const waiting = (this.waiting = CostRing.push(this.waiting, value, bytes, arrivedAt));
    try {
      claimShare(share, bytes);
    } catch (err) {
      waiting.popNewest();
      return this.claimFailed(err);
    }
    this.drain();
  }

  sourceComplete(): void {
    this.sourceDone = true;
    this.checkComplete();
  }

  // Inner side ----------------------------------------------------------------------------

  innerNext(value: R): void {
    if (!this.gone && !this.destination.closed) this.destination.next(value);
  }

  /** A completed inner was torn down: release its value, start the next, maybe complete. */
  innerDone(inner: InFlight<T, R>): void {
    if (this.gone) return;
    this.unlink(inner);
    releaseShare(this.share, inner.cost);
    this.drain();
    this.checkComplete();
  }

  /** Any error, from the source, an inner or a user callback: tell, then free everything. */
  fail(err: unknown): void {
    if (this.gone) return;
    this.gone = true;
    this.tell(err);
    this.teardown();
  }

  // Participant and collapse listener -----------------------------------------------------

  /** @see Participant.getOldest */
  getOldest(): number | undefined {
    // In-flight values arrived before any waiting one; min() stays right with a clock that
    // is not monotonic.
    const a = this.oldest === null ? undefined : this.oldest.arrivedAt;
    const b = CostRing.oldestTimeOf(this.waiting);
    return a === undefined ? b : b === undefined || a <= b ? a : b;
  }

  /** @see Participant.reclaim */
  reclaim(): Reclaimed {
    this.collapse('reclaimed');
    return 'collapsing';
  }

  /**
   * The account was torn down (the optional `accountCollapsed` member of a participant).
   * Reclamation normally reaches us through `reclaim()` first; a 'reclaimed' here means our
   * participant was torn down without being asked (it registered while its account was being
   * reclaimed), so every reason collapses the stream.
   */
  accountCollapsed(reason: CollapseReason): void {
    this.collapse(reason);
  }

  /** The downstream unsubscribed (or the stream ended): free everything. */
  unsubscribe(): void {
    this.gone = true;
    this.teardown();
  }

  // Internals -----------------------------------------------------------------------------

  /** Whether a value may start now: a free slot, and no value still waiting for its claim. */
  private canStart(): boolean {
    const newest = this.newest;
    return this.active < this.settings.concurrency && (newest === null || newest.phase !== PENDING);
  }

  /** Starts waiting values while slots are free, in arrival order. */
  private drain(): void {
    const waiting = this.waiting;
    if (waiting === null) return;
    while (!this.gone && waiting.count > 0 && this.canStart()) {
      const arrivedAt = waiting.oldestTime();
      const bytes = waiting.oldestCost();
      const value = waiting.shift();
      const inner = new InFlight<T, R>(this.destination, INNER as unknown as OperatorHandlers<MapStream<T, R>, R, InFlight<T, R>>, this, bytes, arrivedAt);
      this.link(inner);
      this.start(inner, value);
    }
  }

  /** A claim threw: a share the quota system already took ends the stream as reclaimed. */
  private claimFailed(err: unknown): void {
    const reason = goneReason(this.account, err);
    if (reason === null) this.fail(err);
    else this.collapse(reason);
  }

  /** Projects `value` and subscribes `inner` (already linked and claimed) to the result. */
  private start(inner: InFlight<T, R>, value: T): void {
    inner.phase = RUNNING;
    let input: ObservableInput<R>;
    try {
      const project = this.settings.project;
      input = project(value, this.index++);
    } catch (err) {
      return this.fail(err);
    }
    if (this.gone) return; // project re-entered and ended the stream
    from(input).subscribe(inner);
  }

  private checkComplete(): void {
    if (!this.gone && this.sourceDone && this.active === 0 && CostRing.lengthOf(this.waiting) === 0) {
      this.gone = true;
      if (!this.destination.closed) this.destination.complete();
      this.teardown();
    }
  }

  private collapse(reason: CollapseReason): void {
    if (this.gone) return;
    this.gone = true;
    this.tell(new MemoryReclaimedError(reason));
    this.teardown();
  }

  private tell(err: unknown): void {
    if (!this.destination.closed) this.destination.error(err);
  }

  private link(inner: InFlight<T, R>): void {
    inner.older = this.newest;
    if (this.newest !== null) this.newest.younger = inner;
    else this.oldest = inner;
    this.newest = inner;
    this.active++;
  }

  private unlink(inner: InFlight<T, R>): void {
    const { older, younger } = inner;
    if (older !== null) older.younger = younger;
    else this.oldest = younger;
    if (younger !== null) younger.older = older;
    else this.newest = older;
    inner.older = inner.younger = null;
    this.active--;
  }

  /**
   * Drops the waiting values, unsubscribes the source and every inner, and releases
   * everything. An owned account is closed first: that tears our participant down with all it
   * holds in one transaction (inside `reclaim()` the tracker still counts it as reclaimed).
   * Idempotent.
   */
  private teardown(): void {
    this.upstream.unsubscribe();
    let inner = this.oldest;
    this.oldest = this.newest = null;
    this.active = 0;
    while (inner !== null) {
      const younger = inner.younger;
      inner.older = inner.younger = null;
      inner.unsubscribe();
      inner = younger;
    }
    this.waiting?.clear();
    if (this.settings.ownsAccount) this.account.close();
    dropShare(this.share);
  }
}

/**
 * The subscriber of one inner observable, and the in-flight record of its source value:
 * cost, arrival time, links in start order.
 */
class InFlight<T, R> extends OperatorSubscriber<MapStream<T, R>, R, InFlight<T, R>> {
  older: InFlight<T, R> | null = null;
  younger: InFlight<T, R> | null = null;
  /** `PENDING` until started, `RUNNING`, then `COMPLETED` (its finalization starts the next). */
  phase: InFlightState = PENDING;

  constructor(
    destination: Subscriber<R>,
    handlers: OperatorHandlers<MapStream<T, R>, R, InFlight<T, R>>,
    stream: MapStream<T, R>,
    /** Bytes claimed for the source value. */
    readonly cost: number,
    /** Arrival time of the source value (tracker clock). */
    readonly arrivedAt: number,
  ) {
    super(destination, handlers, stream);
  }
}
