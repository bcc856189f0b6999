/**
 * `memquotaMap`: `mergeMap` / `concatMap` whose waiting buffer and in-flight values are
 * charged to a memory quota account.
 *
 * @module
 */
import { from, Observable, Subscription, type ObservableInput, type Observer, type OperatorFunction, type Subscriber } from 'rxjs';
import type { Account } from '../lib/account.js';
import { memoryCost } from '../lib/cost.js';
import { MemoryReclaimedError } from '../lib/errors.js';
import { claimShare, dropShare, registerShare, releaseShare, type CollapseListener, type Share } from '../lib/seam.js';
import type { MemoryQuotaTracker } from '../lib/tracker.js';
import type { CollapseReason, Participant, Reclaimed } from '../lib/types.js';
import { checkAccountArg, checkOptions, openStream, type AccountArg } from './internal/accountArg.js';
import { checkCost, checkedCost } from './internal/participantQueue.js';
import { CostQueue } from './internal/costQueue.js';
import { SourceSink, type SourceHandler } from './internal/sourceSink.js';

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
 * @param project Maps a source value and its index to an `ObservableInput`.
 * @param options `concurrency` (default 1) and `cost` (default `memoryCost`).
 * @return An operator that maps as `mergeMap` does and holds its values under the quota.
 * @throws TypeError for an account, project or option of the wrong type; RangeError for a
 *   `concurrency` that is not an integer ≥ 1 or `Infinity` (at creation, not at subscription).
 */
export function memquotaMap<T, R>(
  account: AccountArg,
  project: (value: T, index: number) => ObservableInput<R>,
  options: MemquotaMapOptions<T> = {},
): OperatorFunction<T, R> {
  checkAccountArg(account, 'memquotaMap');
  if (typeof project !== 'function') throw new TypeError(`memquotaMap: project must be a function, got ${typeof project}`);
  checkOptions(options, 'memquotaMap');
  const { concurrency = 1, cost = memoryCost as (value: T) => number } = options;
  if (typeof concurrency !== 'number') throw new TypeError(`memquotaMap: concurrency must be a number, got ${typeof concurrency}`);
  if (!(concurrency === Infinity || (Number.isInteger(concurrency) && concurrency >= 1))) {
    throw new RangeError(`memquotaMap: concurrency must be an integer ≥ 1 or Infinity, got ${concurrency}`);
  }
  checkCost(cost, 'memquotaMap');

  return (source) =>
    new Observable<R>((subscriber) => {
      const stream = openStream(account, 'memquotaMap', subscriber, (acc, owned) => new MapStream<T, R>(acc, owned, subscriber, project, cost, concurrency));
      if (stream === undefined) return;
      // Handed to the downstream subscriber before subscribing, so that a synchronous source
      // sees `closed` as soon as the downstream unsubscribes (take(n)).
      subscriber.add(stream);
      source.subscribe(stream.upstream);
    });
}

/**
 * One subscription of `memquotaMap`: the participant, the collapse listener and the logic,
 * in a single object without closures so that an idle stream stays small (the same choice
 * as `memquota`; STYLE's "state in closure variables" would cost a context and a dozen
 * closures per subscription).
 *
 * The values it holds: `waiting` (a ring buffer, FIFO) and the in-flight list, an intrusive
 * doubly linked list of the inner sinks in start order. Values start in arrival order (the
 * waiting queue is FIFO and nothing overtakes it, even reentrantly), so along the list the
 * arrival times are monotonic and the oldest in-flight value is the list's head. Inners finish
 * out of order under concurrency > 1: unlinking any sink is O(1), so `getOldest` is O(1)
 * (head of the list, head of the ring) and nothing is left behind (a ring of in-flight
 * values would keep tombstones of finished inners behind a slow first one, without bound).
 * The links live on the inner sink, which exists anyway: no allocation beyond what
 * `mergeMap` allocates per inner.
 */
class MapStream<T, R> implements Participant, CollapseListener, SourceHandler<T> {
  /** The source's subscriber: unsubscribed when the source completes or the stream ends. */
  readonly upstream: SourceSink<T>;
  private readonly waiting = new CostQueue<T>();
  /** In-flight list: earliest started (oldest data) first. */
  private oldest: InnerSink<T, R> | null = null;
  private newest: InnerSink<T, R> | null = null;
  private active = 0;
  /** True once torn down: every later notification is ignored. */
  private gone = false;
  private sourceDone = false;
  private index = 0;
  /** This stream's record in the books (claimed on without a handle). */
  private readonly share: Share;
  private readonly tracker: MemoryQuotaTracker;

  /** @throws what registration throws (closed account, shut-down tracker). */
  constructor(
    private readonly account: Account,
    private readonly ownsAccount: boolean,
    private readonly destination: Subscriber<R>,
    private readonly project: (value: T, index: number) => ObservableInput<R>,
    private readonly cost: (value: T) => number,
    private readonly concurrency: number,
  ) {
    this.tracker = account.tracker;
    this.share = registerShare(account, this);
    this.upstream = new SourceSink<T>(this);
  }

  // Source side ---------------------------------------------------------------------------

  onSourceNext(value: T): void {
    const cost = this.cost; // called as a plain function: user code never sees this object
    let bytes: number;
    let arrivedAt: number;
    try {
      bytes = checkedCost(cost(value));
      arrivedAt = this.tracker.now();
      claimShare(this.share, bytes);
    } catch (err) {
      this.fail(err);
      return;
    }
    // A synchronous scheduler may have run reclamation inside claim() and collapsed us.
    if (this.gone) return;
    this.waiting.push(value, bytes, arrivedAt);
    this.drain();
  }

  onSourceError(err: unknown): void {
    this.fail(err);
  }

  onSourceComplete(): void {
    this.sourceDone = true;
    this.upstream.unsubscribe();
    this.checkComplete();
  }

  // Inner side ----------------------------------------------------------------------------

  innerNext(value: R): void {
    this.destination.next(value);
  }

  innerComplete(sink: InnerSink<T, R>): void {
    sink.unsubscribe(); // the inner's own teardown first, as mergeMap does
    if (this.gone) return;
    this.unlink(sink);
    releaseShare(this.share, sink.cost);
    this.drain();
    this.checkComplete();
  }

  /** Any error, from the source, an inner or a user callback: release everything, then error. */
  fail(err: unknown): void {
    if (this.gone) return;
    this.teardown();
    this.destination.error(err);
  }

  // Participant and collapse listener -----------------------------------------------------

  /** @see Participant.getOldest */
  getOldest(): number | undefined {
    // In-flight values arrived before any waiting one; min() stays right with a clock that
    // is not monotonic.
    const a = this.oldest === null ? undefined : this.oldest.arrivedAt;
    const b = this.waiting.oldestTime();
    return a === undefined ? b : b === undefined || a <= b ? a : b;
  }

  /** @see Participant.reclaim */
  reclaim(): Reclaimed {
    this.collapse('reclaimed');
    return 'collapsing';
  }

  /**
   * @internal The account was torn down. Reclamation normally reaches us through `reclaim()`
   * first; a 'reclaimed' here means our participant was torn down without being asked (it
   * registered while its account was being reclaimed), so every reason collapses the stream.
   */
  accountCollapsed(reason: CollapseReason): void {
    this.collapse(reason);
  }

  /** The downstream unsubscribed (or ended): free everything. */
  unsubscribe(): void {
    if (!this.gone) this.teardown();
  }

  // Internals -----------------------------------------------------------------------------

  private drain(): void {
    const waiting = this.waiting;
    while (!this.gone && waiting.length > 0 && this.active < this.concurrency) {
      const arrivedAt = waiting.oldestTime()!;
      const bytes = waiting.oldestCost();
      const value = waiting.shift();
      this.start(value, bytes, arrivedAt);
    }
  }

  private start(value: T, bytes: number, arrivedAt: number): void {
    const sink = new InnerSink<T, R>(this, bytes, arrivedAt);
    this.link(sink);
    let inner: Observable<R>;
    try {
      const project = this.project;
      inner = from(project(value, this.index++));
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.gone) return; // project re-entered and tore the stream down
    inner.subscribe(sink);
  }

  private checkComplete(): void {
    if (!this.gone && this.sourceDone && this.active === 0 && this.waiting.length === 0) {
      this.teardown();
      this.destination.complete();
    }
  }

  private collapse(reason: CollapseReason): void {
    if (this.gone) return;
    this.teardown();
    this.destination.error(new MemoryReclaimedError(reason));
  }

  private link(sink: InnerSink<T, R>): void {
    sink.older = this.newest;
    if (this.newest !== null) this.newest.younger = sink;
    else this.oldest = sink;
    this.newest = sink;
    this.active++;
  }

  private unlink(sink: InnerSink<T, R>): void {
    const { older, younger } = sink;
    if (older !== null) older.younger = younger;
    else this.oldest = younger;
    if (younger !== null) younger.older = older;
    else this.newest = older;
    sink.older = sink.younger = null;
    this.active--;
  }

  /**
   * Drops the waiting values, unsubscribes the source and every inner, and releases
   * everything. An owned account is closed first: that tears our participant down with all it
   * holds in one transaction (inside `reclaim()` the tracker still counts it as reclaimed).
   */
  private teardown(): void {
    this.gone = true;
    this.upstream.unsubscribe();
    let sink = this.oldest;
    this.oldest = this.newest = null;
    this.active = 0;
    while (sink !== null) {
      const younger = sink.younger;
      sink.older = sink.younger = null;
      sink.unsubscribe();
      sink = younger;
    }
    this.waiting.clear();
    if (this.ownsAccount) this.account.close();
    dropShare(this.share);
  }
}

/**
 * The observer of one inner observable (a `Subscription` too, as `SourceSink`), and the
 * in-flight record of its source value: cost, arrival time, links in start order.
 */
class InnerSink<T, R> extends Subscription implements Observer<R> {
  older: InnerSink<T, R> | null = null;
  younger: InnerSink<T, R> | null = null;

  constructor(
    private readonly stream: MapStream<T, R>,
    /** Bytes claimed for the source value. */
    readonly cost: number,
    /** Arrival time of the source value (tracker clock). */
    readonly arrivedAt: number,
  ) {
    super();
  }

  next(value: R): void {
    if (!this.closed) this.stream.innerNext(value);
  }

  error(err: unknown): void {
    if (!this.closed) this.stream.fail(err);
  }

  complete(): void {
    if (!this.closed) this.stream.innerComplete(this);
  }
}
