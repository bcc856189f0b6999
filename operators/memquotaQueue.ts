/**
 * `memquotaQueue`: a channel whose buffer counts against the memory quota.
 *
 * @module
 */
import { Observable, Subscription, type Observer, type Subscriber, type TeardownLogic } from 'rxjs';
import { memoryCost } from '../lib/cost.js';
import type { Account } from '../lib/handles.js';
import type { MemoryReclaimedError } from '../lib/errors.js';
import { openOn } from './internal/accountArg.js';
import { checkAccountArg, checkCost, checkedCost, checkOnReclaim, checkOptions, type AccountArg, type OnReclaim } from './internal/options.js';
import { ParticipantQueue, type QueueSettings } from './internal/participantQueue.js';

/** Options of {@link memquotaQueue}. */
export interface MemquotaQueueOptions<T> {
  /** Bytes a value holds while queued. Default {@link memoryCost}. */
  cost?: (value: T) => number;
  /**
   * When the account is reclaimed: `'error'` (default) the receiver errors with
   * `MemoryReclaimedError`; `'complete'` it completes; `'drop-oldest'` the oldest queued values
   * are dropped and the channel stays open.
   */
  onReclaim?: OnReclaim;
}

/**
 * The pushing end of a {@link memquotaQueue}: an Observer that never throws.
 *
 * It is also subscription-shaped, so `source$.subscribe(sender)` hands the source's teardown
 * to the sender: when the channel closes (consumer gone, reclaimed, ended) the source is
 * stopped, and a synchronous source sees `closed` at once.
 */
export interface QueueSender<T> extends Observer<T> {
  /** True once the channel no longer takes values (ended, consumer gone, or reclaimed). */
  readonly closed: boolean;
  /** The producer leaves: ends the channel as `complete()` does and stops the sources. */
  unsubscribe(): void;
  /** Keeps a source's teardown, run when the channel closes (at once if it has). */
  add(teardown: TeardownLogic): void;
  /** Forgets a teardown given to `add`. */
  remove(teardown: TeardownLogic): void;
}

/** The pulling end of a {@link memquotaQueue}: subscribe, or `for await` at your own pace. */
export type QueueReceiver<T> = Observable<T> & AsyncIterable<T>;

/** The two ends of a {@link memquotaQueue}. */
export interface MemquotaChannel<T> {
  /** Push values (and `complete()` / `error()`) here. */
  readonly sender: QueueSender<T>;
  /** One consumer at a time takes them here; when it leaves, the channel is freed. */
  readonly receiver: QueueReceiver<T>;
}

interface Pull<T> {
  resolve(result: IteratorResult<T>): void;
  reject(err: unknown): void;
}

/**
 * Creates a channel whose buffered values are claimed in `account`: the producer pushes into
 * `sender`, one consumer takes from `receiver`, as an Observable or, pulling at its own pace,
 * as an AsyncIterable.
 *
 * <span class="informal">A bounded mailbox between a fast producer and a slow consumer:
 * if the consumer falls too far behind, the quota system reclaims the channel.</span>
 *
 * ```text
 * sender.next:  a b c d e f g …          (the consumer awaits a slow write per value)
 * receiver:     a . . b . . c . . #       # = MemoryReclaimedError once the buffered
 *                                             values are the oldest data over max
 * ```
 *
 * Each value pushed is claimed (its `cost`) until the consumer takes it. Leaving the loop (or
 * unsubscribing) frees the channel: queued values are dropped and released and
 * `sender.closed` turns true. After reclamation `sender.next` drops values without throwing
 * and `sender.closed` is true; the receiver errors with `MemoryReclaimedError`. A factory
 * account is created here and closed when the channel ends.
 *
 * One consumer at a time: a subscriber, or an async iterator. An iterator becomes the consumer
 * with its first `next()` and stays the consumer until it ends (`return()`, as `break` in a
 * `for await` loop calls it, or the channel's end). Only the consumer's own `return()` (or
 * unsubscribing the consumer's subscription) frees the channel; `return()` on any other
 * iterator ends that iterator alone, and a second consumer (subscriber or iterator `next()`)
 * is refused with a TypeError. A `return()` while the same iterator's `next()` is pending
 * settles that promise with `{ done: true }`.
 *
 * ## Example
 * ```ts
 * import { MemoryQuotaTracker, memquotaQueue } from 'rxjs-memquota';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 64 * 1024 * 1024 });
 * const { sender, receiver } = memquotaQueue<Buffer>(tracker.newAccount(), { cost: (b) => b.length });
 * producer$.subscribe(sender);
 * for await (const chunk of receiver) await write(chunk);
 * ```
 *
 * @see {@link memquota}
 * @param account The account to claim in, or a factory for the channel's own account.
 * @param options `cost`, `onReclaim`.
 * @return The `sender` and `receiver` ends.
 * @throws TypeError for a bad argument; MemquotaError if the account is closed.
 */
export function memquotaQueue<T>(account: AccountArg, options: MemquotaQueueOptions<T> = {}): MemquotaChannel<T> {
  checkAccountArg(account, 'memquotaQueue');
  checkOptions(options, 'memquotaQueue');
  const { cost = memoryCost as (value: T) => number } = options;
  checkCost(cost, 'memquotaQueue');
  const settings: QueueSettings<T> = { cost, onReclaim: checkOnReclaim(options.onReclaim, 'memquotaQueue'), ownsAccount: typeof account === 'function' };

  let consumer: Subscriber<T> | null = null;
  // The iterator that is the consumer (from its first next() on), and its pending next().
  let puller: object | null = null;
  let pull: Pull<T> | null = null;
  let delivering = false;
  // How the channel ends once the queue is empty.
  let ending: 'complete' | 'error' | null = null;
  let endError: unknown;
  // Set once the consumer has been told the end (or has left): nothing more is delivered.
  let finished = false;

  // The teardowns of the sources the sender is subscribed to: run once when sending stops.
  const producers = new Subscription();
  const stopProducers = (): void => producers.unsubscribe();

  // The quota system took the channel: the consumer hears it first, the producers stop after.
  const gone = (error: MemoryReclaimedError | undefined): void => {
    if (error === undefined) ending = 'complete';
    else {
      ending = 'error';
      endError = error;
    }
    finish();
    stopProducers();
  };

  const queue = openOn(account, 'memquotaQueue', (acc) => new ChannelQueue<T>(acc, settings, gone));

  // Tells whoever is listening how the channel ended, then frees the queue.
  function finish(): void {
    if (finished || ending === null) return;
    if (consumer === null && pull === null) return; // told to the next consumer that comes
    finished = true;
    const c = consumer;
    const p = pull;
    consumer = null;
    pull = null;
    if (ending === 'complete') {
      if (c !== null && !c.closed) c.complete();
      p?.resolve({ value: undefined, done: true });
    } else {
      if (c !== null && !c.closed) c.error(endError);
      p?.reject(endError);
    }
    queue.close();
  }

  function drain(): void {
    if (delivering) return;
    delivering = true;
    while (consumer !== null && queue.length > 0) {
      const value = queue.dequeue();
      // The release can run user code that makes the consumer leave.
      const c = consumer;
      if (c === null || c.closed) break;
      c.next(value);
    }
    delivering = false;
    if (queue.length === 0) finish();
  }

  // Nothing queued and nobody delivering: the value goes straight to the subscriber, or to
  // the pending next(). (Out of `sender.next`, whose hot path is the buffered one.)
  function handOn(value: T): void {
    if (consumer !== null) {
      // Never held; what the consumer sends meanwhile waits its turn.
      delivering = true;
      consumer.next(value);
      delivering = false;
      if (queue.length > 0) drain();
      return;
    }
    const p = pull!;
    pull = null;
    p.resolve({ value, done: false });
  }

  // The consumer left: a pending next() is settled as done, the channel freed.
  function leave(): void {
    const p = pull;
    consumer = null;
    pull = null;
    finished = true;
    queue.close();
    stopProducers();
    p?.resolve({ value: undefined, done: true });
  }

  const sender: QueueSender<T> = {
    get closed() {
      // A queue torn down by the quota system has set `ending` too.
      return finished || ending !== null;
    },
    next(value: T) {
      if (finished || ending !== null) return; // closed
      let bytes: number;
      try {
        bytes = checkedCost(cost(value));
        // Buffered: behind queued values, inside a delivery, or nobody pulling yet.
        if (delivering || (consumer === null && pull === null) || queue.length > 0) {
          if (!queue.enqueue(value, bytes)) return;
        } else return handOn(value);
      } catch (err) {
        // A throwing cost or a refused claim ends the channel with that error.
        sender.error(err);
        return;
      }
      if (consumer !== null) drain();
    },
    error(err: unknown) {
      if (sender.closed) return;
      ending = 'error';
      endError = err;
      stopProducers();
      if (queue.length === 0) finish();
    },
    complete() {
      if (sender.closed) return;
      ending = 'complete';
      stopProducers();
      if (queue.length === 0) finish();
    },
    unsubscribe() {
      sender.complete();
      stopProducers();
    },
    add(teardown: TeardownLogic) {
      if (teardown === sender) return;
      if (sender.closed) stopProducers(); // sending has stopped: producers.add runs it at once
      producers.add(teardown);
    },
    remove(teardown: TeardownLogic) {
      if (teardown instanceof Subscription || typeof teardown === 'function') producers.remove(teardown);
    },
  };

  const busy = (): TypeError => new TypeError('memquotaQueue: the receiver has a consumer already; a channel delivers to one consumer at a time');
  const freed = (): TypeError => new TypeError('memquotaQueue: the receiver was left (unsubscribed or returned) and the channel freed');

  const receiver = new Observable<T>((subscriber) => {
    if (consumer !== null || (puller !== null && !finished)) return subscriber.error(busy());
    if (finished) return subscriber.error(freed());
    consumer = subscriber;
    drain();
    return () => {
      if (consumer === subscriber) leave();
    };
  }) as QueueReceiver<T>;

  // The consumer's next() with nothing queued: it waits for a value or the end.
  function waitForValue(): Promise<IteratorResult<T>> {
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      pull = { resolve, reject };
      finish(); // delivers the end at once if the channel has ended
    });
  }

  receiver[Symbol.asyncIterator] = (): AsyncIterator<T> => {
    let returned = false;
    const iterator: AsyncIterator<T> = {
      next(): Promise<IteratorResult<T>> {
        if (returned || finished) return Promise.resolve({ value: undefined, done: true });
        if (pull !== null) return Promise.reject(busy());
        if (puller !== iterator) {
          if (consumer !== null || puller !== null) return Promise.reject(busy());
          puller = iterator;
        }
        if (queue.length > 0) return Promise.resolve({ value: queue.dequeue(), done: false });
        return waitForValue();
      },
      return(): Promise<IteratorResult<T>> {
        returned = true;
        // Only the consumer's own iterator frees the channel (see the doc above).
        if (puller === iterator) leave();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
    return iterator;
  };

  return { sender, receiver };
}

/** The channel's participant queue; the channel's closures say what a collapse means. */
class ChannelQueue<T> extends ParticipantQueue<T> {
  constructor(
    account: Account,
    settings: QueueSettings<T>,
    private readonly onGone: (error: MemoryReclaimedError | undefined) => void,
  ) {
    super(account, settings);
  }

  protected collapsed(error: MemoryReclaimedError | undefined): void {
    this.onGone(error);
  }
}
