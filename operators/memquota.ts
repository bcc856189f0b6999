/**
 * `memquota`: any stream as a bounded, self-destroying participant queue.
 *
 * @module
 */
import { Observable, Subscriber, type MonoTypeOperatorFunction, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';
import { memoryCost } from '../lib/cost.js';
import type { MemoryReclaimedError } from '../lib/errors.js';
import { accountFor, checkAccountArg, type AccountArg } from './internal/accountArg.js';
import { checkCost, checkedCost, checkOnReclaim, ParticipantQueue, type OnReclaim } from './internal/participantQueue.js';

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
  const { cost = memoryCost as (value: T) => number, scheduler } = options;
  checkCost(cost, 'memquota');
  if (scheduler !== undefined && typeof scheduler?.schedule !== 'function') {
    throw new TypeError('memquota: scheduler must be an RxJS SchedulerLike');
  }
  const onReclaim = checkOnReclaim(options.onReclaim, 'memquota');

  return (source) =>
    new Observable<T>((subscriber) => {
      // What ends the stream once the queue is empty: nothing yet, complete, or an error.
      let ending: 'complete' | 'error' | null = null;
      let endError: unknown;
      let delivering = false;
      let drainAction: Subscription | null = null;

      const gone = (error: MemoryReclaimedError | undefined): void => {
        drainAction?.unsubscribe();
        sourceSubscriber.unsubscribe();
        if (error === undefined) subscriber.complete();
        else subscriber.error(error);
      };

      let queue: ParticipantQueue<T>;
      try {
        const { account: acc, owned } = accountFor(account, 'memquota');
        try {
          queue = new ParticipantQueue<T>(acc, owned, onReclaim, gone);
        } catch (err) {
          if (owned) acc.close();
          throw err;
        }
      } catch (err) {
        subscriber.error(err);
        return;
      }

      const fail = (err: unknown): void => {
        queue.close();
        drainAction?.unsubscribe();
        sourceSubscriber.unsubscribe();
        subscriber.error(err);
      };

      const end = (): void => {
        queue.close();
        if (ending === 'complete') subscriber.complete();
        else subscriber.error(endError);
      };

      // Delivers queued values in order; a reentrant call returns at once and the outer loop
      // picks the new value up.
      const drain = (): void => {
        if (delivering) return;
        delivering = true;
        while (queue.length > 0 && !queue.gone && !subscriber.closed) {
          subscriber.next(queue.dequeue());
        }
        delivering = false;
        if (ending !== null && queue.length === 0 && !queue.gone) end();
      };

      // One scheduled task per value, as observeOn delivers, reusing the action.
      const deliverOne = function (this: SchedulerAction<null>): void {
        if (queue.gone || subscriber.closed) return;
        if (queue.length > 0) subscriber.next(queue.dequeue());
        if (queue.gone || subscriber.closed) return;
        if (queue.length > 0) this.schedule(null);
        else if (ending !== null) end();
        else drainAction = null;
      };
      const scheduleDelivery = (): void => {
        if (drainAction === null) drainAction = scheduler!.schedule(deliverOne, 0, null);
      };

      // A Subscriber of our own, added to the downstream one before subscribing, so that a
      // synchronous source sees `closed` as soon as the downstream unsubscribes (RxJS's own
      // operators get this from the internal OperatorSubscriber, which is not exported).
      const sourceSubscriber = new Subscriber<T>({
        next(value: T) {
          if (queue.gone) return;
          let bytes: number;
          try {
            bytes = checkedCost(cost(value));
          } catch (err) {
            fail(err);
            return;
          }
          if (scheduler === undefined && !delivering && queue.length === 0) {
            // Straight through: never held, never claimed. What the subscriber emits back into
            // the source meanwhile (reentrancy) waits in the queue.
            delivering = true;
            subscriber.next(value);
            delivering = false;
            if (queue.length > 0 || ending !== null) drain();
            return;
          }
          try {
            if (!queue.enqueue(value, bytes)) return;
          } catch (err) {
            fail(err);
            return;
          }
          if (scheduler === undefined) drain();
          else scheduleDelivery();
        },
        error(err: unknown) {
          if (queue.gone) return;
          ending = 'error';
          endError = err;
          if (scheduler !== undefined) scheduleDelivery(); // in order, after the queued values
          else if (queue.length === 0 && !delivering) end();
        },
        complete() {
          if (queue.gone) return;
          ending = 'complete';
          if (scheduler !== undefined) scheduleDelivery(); // in order, after the queued values
          else if (queue.length === 0 && !delivering) end();
        },
      });
      subscriber.add(sourceSubscriber);
      source.subscribe(sourceSubscriber);

      return () => {
        queue.close();
        drainAction?.unsubscribe();
      };
    });
}
