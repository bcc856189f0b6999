/**
 * `memquota`: any stream as a bounded, self-destroying participant queue.
 *
 * @module
 */
import { Observable, type MonoTypeOperatorFunction, type SchedulerAction, type SchedulerLike, type Subscriber, type Subscription } from 'rxjs';
import { memoryCost } from '../lib/cost.js';
import type { Account } from '../lib/account.js';
import type { MemoryReclaimedError } from '../lib/errors.js';
import { checkAccountArg, checkOptions, openStream, type AccountArg } from './internal/accountArg.js';
import { checkCost, checkedCost, checkOnReclaim, ParticipantQueue, type OnReclaim } from './internal/participantQueue.js';
import { SourceSink, type SourceHandler } from './internal/sourceSink.js';

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
 * Unsubscribing frees everything. A `cost` that throws errors the subscriber.
 *
 * Without a scheduler a value that can be delivered at once is handed straight on (it is
 * never held, so it is never claimed); only values emitted while the subscriber is still
 * inside `next` (reentrancy) wait in the queue.
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
  if (scheduler !== undefined && typeof scheduler?.schedule !== 'function') {
    throw new TypeError('memquota: scheduler must be an RxJS SchedulerLike');
  }
  const onReclaim = checkOnReclaim(options.onReclaim, 'memquota');

  return (source) =>
    new Observable<T>((subscriber) => {
      const stream = openStream(account, 'memquota', subscriber, (acc, owned) => new MemquotaStream<T>(acc, owned, onReclaim, subscriber, cost, scheduler));
      if (stream === undefined) return;
      // Handed to the downstream subscriber before subscribing, so that a synchronous source
      // sees `closed` as soon as the downstream unsubscribes (take(n)).
      subscriber.add(stream.upstream);
      subscriber.add(stream);
      source.subscribe(stream.upstream);
    });
}

/** The scheduled delivery task: one value per run, rescheduling itself, as observeOn does. */
function deliverOne<T>(this: SchedulerAction<MemquotaStream<T>>, stream?: MemquotaStream<T>): void {
  if (stream!.deliverScheduled()) this.schedule(stream);
}

/**
 * One subscription of `memquota`: the participant queue, the source's observer, and the
 * teardown handed to the downstream subscriber. A single object per subscription, with no
 * closures, so an idle stream stays small.
 */
class MemquotaStream<T> extends ParticipantQueue<T> implements SourceHandler<T> {
  /** The source's subscriber, unsubscribed when the queue is torn down. */
  readonly upstream = new SourceSink<T>(this);
  /** How the stream ends once the queue is empty: not yet, complete, or error. */
  private ending: 'complete' | 'error' | null = null;
  private endError: unknown = undefined;
  /** True while inside the downstream `next`: values arriving meanwhile wait. */
  private delivering = false;
  private delivery: Subscription | null = null;

  constructor(
    account: Account,
    ownsAccount: boolean,
    onReclaim: OnReclaim,
    private readonly destination: Subscriber<T>,
    private readonly cost: (value: T) => number,
    private readonly scheduler: SchedulerLike | undefined,
  ) {
    super(account, ownsAccount, onReclaim);
  }

  onSourceNext(value: T): void {
    if (this.gone) return;
    let bytes: number;
    try {
      const cost = this.cost; // called as a plain function: user code never sees this object
      bytes = checkedCost(cost(value));
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.scheduler === undefined && !this.delivering && this.length === 0) {
      // Straight through: never held, never claimed. What the subscriber emits back into
      // the source meanwhile (reentrancy) waits in the queue.
      this.delivering = true;
      this.destination.next(value);
      this.delivering = false;
      if (this.length > 0) this.drain();
      return;
    }
    try {
      if (!this.enqueue(value, bytes)) return;
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.scheduler === undefined) this.drain();
    else this.scheduleDelivery();
  }

  onSourceError(err: unknown): void {
    if (this.gone) return;
    this.ending = 'error';
    this.endError = err;
    this.afterSourceEnded();
  }

  onSourceComplete(): void {
    if (this.gone) return;
    this.ending = 'complete';
    this.afterSourceEnded();
  }

  /** The downstream unsubscribed: free everything. */
  unsubscribe(): void {
    this.close();
    this.delivery?.unsubscribe();
  }

  /** Delivers one scheduled value; returns whether to run again. */
  deliverScheduled(): boolean {
    if (this.gone || this.destination.closed) return false;
    if (this.length > 0) this.destination.next(this.dequeue());
    if (this.gone || this.destination.closed) return false;
    if (this.length > 0) return true;
    this.delivery = null;
    if (this.ending !== null) this.end();
    return false;
  }

  protected collapsed(error: MemoryReclaimedError | undefined): void {
    this.delivery?.unsubscribe();
    this.upstream.unsubscribe();
    if (error === undefined) this.destination.complete();
    else this.destination.error(error);
  }

  private afterSourceEnded(): void {
    // With a scheduler the end is delivered in order, after the queued values, as observeOn does.
    if (this.scheduler !== undefined) this.scheduleDelivery();
    else if (this.length === 0 && !this.delivering) this.end();
  }

  private scheduleDelivery(): void {
    if (this.delivery === null) this.delivery = this.scheduler!.schedule(deliverOne<T>, 0, this);
  }

  /** Delivers queued values in order; a reentrant call returns at once (the outer loop goes on). */
  private drain(): void {
    if (this.delivering) return;
    this.delivering = true;
    while (this.length > 0 && !this.gone && !this.destination.closed) this.destination.next(this.dequeue());
    this.delivering = false;
    if (this.ending !== null && this.length === 0 && !this.gone) this.end();
  }

  private end(): void {
    this.close();
    if (this.ending === 'complete') this.destination.complete();
    else this.destination.error(this.endError);
  }

  private fail(err: unknown): void {
    this.close();
    this.delivery?.unsubscribe();
    this.upstream.unsubscribe();
    this.destination.error(err);
  }
}
