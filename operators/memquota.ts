/**
 * `memquota`: any stream as a bounded, self-destroying participant queue.
 *
 * @module
 */
import {
  Observable,
  type MonoTypeOperatorFunction,
  type Observer,
  type SchedulerAction,
  type SchedulerLike,
  type Subscriber,
  type Subscription,
  type TeardownLogic,
  type Unsubscribable,
} from 'rxjs';
import { memoryCost } from '../lib/cost.js';
import type { Account } from '../lib/account.js';
import type { MemoryReclaimedError } from '../lib/errors.js';
import { checkAccountArg, checkOptions, openStream, type AccountArg } from './internal/accountArg.js';
import { checkCost, checkedCost, checkOnReclaim, ParticipantQueue, type OnReclaim } from './internal/participantQueue.js';
import { forgetTeardown, keepTeardown, runTeardown, runTeardowns, type KeptTeardowns } from './internal/teardowns.js';

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
      // The stream is the source's subscriber too (see MemquotaStream), handed to the
      // downstream subscriber before subscribing: a synchronous source sees `closed` as soon as
      // the downstream unsubscribes (take(n)).
      subscriber.add(stream);
      source.subscribe(stream);
    });
}

/** `MemquotaStream.end` before the source ended, and after it completed (module-private). */
const NOT_ENDED = Symbol('not ended');
const COMPLETED = Symbol('completed');

/** The scheduled delivery task: one value per run, rescheduling itself, as observeOn does. */
function deliverOne<T>(this: SchedulerAction<MemquotaStream<T>>, stream?: MemquotaStream<T>): void {
  if (stream!.deliverScheduled()) this.schedule(stream);
}

/**
 * One subscription of `memquota`: the participant queue, the source's subscriber, and the
 * teardown handed to the downstream subscriber, in a single object with no closures, so that
 * an idle stream stays small (B5 in the benchmarks).
 *
 * It is the source's subscriber by shape (see `internal/teardowns.ts`): `closed` is `gone`,
 * and the teardown the source hands over is kept and run once when the stream ends.
 */
class MemquotaStream<T> extends ParticipantQueue<T> implements Observer<T>, Unsubscribable {
  /** What the source handed over to stop it: one teardown, or a list when it gave several. */
  private sourceTeardown: KeptTeardowns = null;
  /** How the stream ends once the queue is empty: `NOT_ENDED`, `COMPLETED`, or the error. */
  private end: unknown = NOT_ENDED;
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

  /** Closed once the queue is torn down, for whatever reason. */
  get closed(): boolean {
    return this.gone;
  }

  /** Keeps a teardown of the source's, run when the stream ends (at once if it has). */
  add(teardown: TeardownLogic): void {
    if (!teardown || teardown === this) return;
    if (this.gone) return runTeardown(teardown);
    this.sourceTeardown = keepTeardown(this.sourceTeardown, teardown);
  }

  /** Forgets a teardown handed over with `add`. */
  remove(teardown: TeardownLogic): void {
    this.sourceTeardown = forgetTeardown(this.sourceTeardown, teardown);
  }

  next(value: T): void {
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
      // The subscriber may have re-entered: values to deliver, or the source's end.
      if (this.length > 0 || this.end !== NOT_ENDED) this.drain();
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

  error(err: unknown): void {
    if (this.gone) return;
    this.end = err;
    this.afterSourceEnded();
  }

  complete(): void {
    if (this.gone) return;
    this.end = COMPLETED;
    this.afterSourceEnded();
  }

  /** The downstream unsubscribed: free everything, stop the source. */
  unsubscribe(): void {
    this.close();
    this.delivery?.unsubscribe();
    this.stopSource();
  }

  /** Delivers one scheduled value; returns whether to run again. */
  deliverScheduled(): boolean {
    if (this.gone || this.destination.closed) return false;
    if (this.length > 0) this.destination.next(this.dequeue());
    if (this.gone || this.destination.closed) return false;
    if (this.length > 0) return true;
    this.delivery = null;
    if (this.end !== NOT_ENDED) this.finish();
    return false;
  }

  protected collapsed(error: MemoryReclaimedError | undefined): void {
    this.delivery?.unsubscribe();
    this.stopSource();
    if (error === undefined) this.destination.complete();
    else this.destination.error(error);
  }

  private afterSourceEnded(): void {
    // With a scheduler the end is delivered in order, after the queued values, as observeOn does.
    if (this.scheduler !== undefined) this.scheduleDelivery();
    else if (this.length === 0 && !this.delivering) this.finish();
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
    if (this.end !== NOT_ENDED && this.length === 0 && !this.gone) this.finish();
  }

  private finish(): void {
    this.close();
    this.stopSource();
    if (this.end === COMPLETED) this.destination.complete();
    else this.destination.error(this.end);
  }

  private fail(err: unknown): void {
    this.close();
    this.delivery?.unsubscribe();
    this.stopSource();
    this.destination.error(err);
  }

  /** Runs what the source handed over, once. */
  private stopSource(): void {
    const kept = this.sourceTeardown;
    this.sourceTeardown = null;
    runTeardowns(kept);
  }
}
