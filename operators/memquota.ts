/**
 * `memquota`: any stream as a bounded, self-destroying participant queue.
 *
 * @module
 */
import { Observable, type MonoTypeOperatorFunction, type SchedulerAction, type SchedulerLike, type Subscriber, type Unsubscribable } from 'rxjs';
import { memoryCost } from '../lib/cost.js';
import type { Account } from '../lib/handles.js';
import type { MemoryReclaimedError } from '../lib/errors.js';
import { openStream } from './internal/accountArg.js';
import { OperatorSubscriber, type OperatorHandlers } from './internal/operatorSubscriber.js';
import { checkAccountArg, checkCost, checkedCost, checkOnReclaim, checkOptions, checkScheduler, type AccountArg, type OnReclaim } from './internal/options.js';
import { ParticipantQueue, type QueueSettings } from './internal/participantQueue.js';

/** Options of {@link memquota}. */
export interface MemquotaOptions<T> {
  /** Bytes a value holds while queued. Default {@link memoryCost}. */
  cost?: (value: T) => number;
  /**
   * Where values are delivered, as with `observeOn`. Without one, values pass straight through
   * and only reentrant emissions wait in the queue.
   */
  scheduler?: SchedulerLike;
  /**
   * What the stream does when its account is reclaimed: `'error'` (default) errors the
   * subscriber with `MemoryReclaimedError`; `'complete'` completes it; `'drop-oldest'` drops
   * the oldest queued values until the tracker's excess is freed and keeps the stream alive.
   */
  onReclaim?: OnReclaim;
}

/**
 * Makes a stream a bounded participant of a memory quota: values waiting for delivery are
 * claimed in `account`, and if the account is reclaimed the stream is torn down.
 *
 * <span class="informal">Like `observeOn`, but every queued value counts against a
 * process-wide memory quota, and a stream that falls too far behind is killed.</span>
 *
 * ```text
 * source:     --a--b--c--d--e--f--…    (the consumer stalls after b)
 * memquota:   --a--b--------#           # = MemoryReclaimedError once c, d, e are the
 *                                           oldest data in a tracker over max
 * ```
 *
 * Each subscription registers one participant queue in the account (a factory
 * `() => Account` gives each subscription its own account, closed on unsubscribe). A value is
 * claimed (its `cost`) when it arrives and released when it is delivered downstream; the
 * arrival time of the oldest queued value is the queue's data age. When the account is
 * reclaimed (or closed, or its tracker shut down), the queue drops and releases what it holds,
 * unsubscribes from the source and errors the subscriber with `MemoryReclaimedError`
 * (`onReclaim: 'complete'` completes instead; `'drop-oldest'` sheds old values and lives on).
 * Unsubscribing frees everything.
 *
 * Without a scheduler a value that can be delivered at once is handed straight on (it is
 * never held, so it is never claimed); only values emitted while the subscriber is still
 * inside `next` (reentrancy) wait in the queue.
 *
 * With a scheduler it behaves as `observeOn(scheduler)` does, notification for notification:
 * one action is scheduled per notification when it arrives (so other work on the same
 * scheduler interleaves exactly as with `observeOn`; with `queueScheduler` outside a flush
 * every value is delivered at once), a source that completes or errors is unsubscribed at
 * once (its `finalize` runs before the queued values are delivered), and a misbehaving source
 * that calls `next` after `complete` is ignored.
 *
 * Order of ends, as in RxJS: the subscriber is told first (`error`, `complete`), the source
 * and the queue are torn down after; a subscriber that has unsubscribed meanwhile (from a
 * `collapsed$`, `events$` or `pressure$` callback) is told nothing. A `cost` that throws or
 * answers something that is not a byte count ends the stream with that error as if the
 * source had sent it: after the values queued before it (as `map(cost)` then `observeOn`
 * would), and the source is stopped at once. A value is stored before it is claimed, so the
 * claim's callbacks (and a synchronous tracker scheduler's reclamation) see it as this
 * queue's data, ahead of anything they push into the stream.
 *
 * The queue is a `Participant` that also has the optional `accountCollapsed(reason)` member:
 * the tracker calls it once, after its books are settled, when the account is torn down
 * without asking this participant first (closed, tracker shut down, or reclaimed while the
 * queue was joining it). The stream then ends with `MemoryReclaimedError(reason)`. A value
 * pushed while the quota system has already taken the queue but not yet told it (from inside
 * the account's `collapse` event, or during `tracker.shutdown()`) ends the stream the same way.
 *
 * ## Example
 * ```ts
 * import { asapScheduler, interval, map } from 'rxjs';
 * import { MemoryQuotaTracker, memquota } from 'rxjs-memquota';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 64 * 1024 * 1024 });
 * const server = tracker.newAccount();
 *
 * interval(1)
 *   .pipe(
 *     map((i) => 'x'.repeat(1024) + i),
 *     memquota(() => server.newChild(), { scheduler: asapScheduler }),
 *   )
 *   .subscribe({ next: (line) => send(line), error: (err) => console.log(err.name) });
 * ```
 *
 * @see {@link memquotaMap}
 * @see {@link memquotaQueue}
 * @param account The account to claim in, or a factory giving each subscription its own.
 * @param options `cost`, `scheduler`, `onReclaim`.
 * @return A function that returns an Observable mirroring the source, bounded by the quota.
 */
export function memquota<T>(account: AccountArg, options: MemquotaOptions<T> = {}): MonoTypeOperatorFunction<T> {
  checkAccountArg(account, 'memquota');
  checkOptions(options, 'memquota');
  const { cost = memoryCost as (value: T) => number, scheduler } = options;
  checkCost(cost, 'memquota');
  checkScheduler(scheduler, 'memquota');
  const settings: StreamSettings<T> = { cost, onReclaim: checkOnReclaim(options.onReclaim, 'memquota'), ownsAccount: typeof account === 'function', scheduler };

  return (source) =>
    new Observable<T>((subscriber) => {
      const stream = openStream(account, 'memquota', subscriber, (acc) => new MemquotaStream<T>(acc, settings, subscriber));
      if (stream === undefined) return;
      // Handed to the downstream subscriber before subscribing: a synchronous source sees its
      // subscriber closed as soon as the downstream unsubscribes (take(n)).
      subscriber.add(stream);
      source.subscribe(stream.upstream);
    });
}

/** What every subscription of one `memquota` operator shares. */
interface StreamSettings<T> extends QueueSettings<T> {
  readonly scheduler: SchedulerLike | undefined;
}

/** `MemquotaStream.end` before the source ended, and after it completed (module-private). */
const NOT_ENDED = Symbol('not ended');
const COMPLETED = Symbol('completed');

/** The source side of every `memquota` subscription (shared, no closures). */
const SOURCE: OperatorHandlers<MemquotaStream<unknown>, unknown> = {
  onNext: (stream, value) => stream.sourceNext(value),
  onError: (stream, err) => stream.sourceEnd(err),
  onComplete: (stream) => stream.sourceEnd(COMPLETED),
};

/**
 * The scheduled delivery of one notification. One action is scheduled per notification when
 * it arrives, as `observeOn` does, so other work on the scheduler interleaves exactly as with
 * `observeOn`; the action takes whatever is at the head of the queue (the stream is its state:
 * no closure per value).
 */
function deliverNext(this: SchedulerAction<MemquotaStream<unknown>>, stream?: MemquotaStream<unknown>): void {
  stream!.deliverNext();
}

/**
 * One subscription of `memquota`: the participant queue, the source's state and the teardown
 * handed to the downstream subscriber, in one object with no closures, so that an idle
 * stream stays small (B5 in the benchmarks). The source's subscriber is an
 * {@link OperatorSubscriber} whose handlers call back here.
 *
 * Ends, in RxJS order: the subscriber is told first (`complete`, `error`), the upstream and
 * the queue are torn down after; a source that completed or errored is unsubscribed at once,
 * even while its values still wait for a scheduled delivery (as `observeOn` does).
 */
class MemquotaStream<T> extends ParticipantQueue<T> implements Unsubscribable {
  /** The source's subscriber. */
  readonly upstream: OperatorSubscriber<MemquotaStream<T>, T>;
  /** How the stream ends once the queue is empty: `NOT_ENDED`, `COMPLETED`, or the error. */
  private end: unknown = NOT_ENDED;
  /** True while inside the downstream `next` (no scheduler): values arriving meanwhile wait. */
  private delivering = false;

  constructor(
    account: Account,
    protected override readonly settings: StreamSettings<T>,
    private readonly destination: Subscriber<T>,
  ) {
    super(account, settings);
    this.upstream = new OperatorSubscriber(destination, SOURCE as unknown as OperatorHandlers<MemquotaStream<T>, T>, this);
  }

  /** A value from the source. */
  sourceNext(value: T): void {
    if (this.gone) return;
    let bytes: number;
    try {
      const cost = this.settings.cost; // called as a plain function: user code never sees this object
      bytes = checkedCost(cost(value));
    } catch (err) {
      return this.sourceFailed(err);
    }
    const scheduler = this.settings.scheduler;
    if (scheduler === undefined && !this.delivering && this.length === 0) {
      // Straight through: never held, never claimed. What the subscriber emits back into
      // the source meanwhile (reentrancy) waits in the queue.
      this.delivering = true;
      this.destination.next(value);
      this.delivering = false;
      // The subscriber may have re-entered: values to deliver, or the source's end.
      if (this.length > 0 || this.end !== NOT_ENDED) this.drain();
      return;
    }
    let stored: boolean;
    try {
      stored = this.enqueue(value, bytes);
    } catch (err) {
      return this.sourceFailed(err);
    }
    if (!stored) return;
    if (scheduler === undefined) this.drain();
    else scheduler.schedule(deliverNext as (this: SchedulerAction<this>, stream?: this) => void, 0, this);
  }

  /** The source ended (`COMPLETED`, or its error): told after the queued values. */
  sourceEnd(end: unknown): void {
    if (this.gone || this.end !== NOT_ENDED) return;
    this.end = end;
    const scheduler = this.settings.scheduler;
    if (scheduler !== undefined) scheduler.schedule(deliverNext as (this: SchedulerAction<this>, stream?: this) => void, 0, this);
    else if (this.length === 0 && !this.delivering) this.finish();
  }

  /** The downstream unsubscribed (or the stream ended): free everything, stop the source. */
  unsubscribe(): void {
    this.close();
    this.upstream.unsubscribe();
  }

  /** One scheduled delivery: the head of the queue, or the end once the queue is empty. */
  deliverNext(): void {
    if (this.gone) return;
    if (this.length > 0) {
      const value = this.dequeue();
      // The release can run user code (pressure$, usage$) that unsubscribes us.
      if (!this.gone && !this.destination.closed) this.destination.next(value);
    } else if (this.end !== NOT_ENDED) this.finish();
  }

  protected collapsed(error: MemoryReclaimedError | undefined): void {
    const destination = this.destination;
    if (!destination.closed) {
      if (error === undefined) destination.complete();
      else destination.error(error);
    }
    this.upstream.unsubscribe();
  }

  /**
   * A value could not be taken (its `cost` threw or was invalid, or the claim was refused):
   * the stream ends with that error as if the source had sent it, after the values queued
   * before it (as `map(cost)` then `observeOn` would), and the source is stopped now.
   */
  private sourceFailed(err: unknown): void {
    this.upstream.unsubscribe();
    this.sourceEnd(err);
  }

  /** Delivers queued values in order (no scheduler); a reentrant call returns at once. */
  private drain(): void {
    if (this.delivering) return;
    this.delivering = true;
    while (this.length > 0 && !this.gone) {
      const value = this.dequeue();
      if (this.gone || this.destination.closed) break;
      this.destination.next(value);
    }
    this.delivering = false;
    if (!this.gone && this.end !== NOT_ENDED && this.length === 0) this.finish();
  }

  /** Tells the subscriber the end, then tears down. */
  private finish(): void {
    this.gone = true;
    const destination = this.destination;
    if (!destination.closed) {
      if (this.end === COMPLETED) destination.complete();
      else destination.error(this.end);
    }
    this.unsubscribe();
  }
}
