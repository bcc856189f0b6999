/**
 * The tracker's signals: `events$`, `usage$` and `pressure$`.
 *
 * ## Reentrancy
 * Subscribers may call back into the tracker while they are told something.
 * - `pressure$` and `usage$`: what that causes is told to every subscriber **after** the
 *   current emission has reached all of them, in the order it happened (each drains its own
 *   queue; no nested emission). So every subscriber sees the same sequence of states and ends
 *   on the current one.
 * - `events$`: events are told at once, as they happen (nested when a subscriber causes one):
 *   an event describes the moment it is emitted (a `victim` is still open when it is told).
 *
 * Snapshots of `usage$` are built only while someone subscribes.
 *
 * @module
 * Internal: not part of the public API. (Not tagged as such: with `stripInternal`, a tag in
 * the file's first comment strips its first import from the declarations.)
 */
import { BehaviorSubject, Observable, Subject } from 'rxjs';
import type { MemquotaEvent, Usage } from './types.js';

/** `event` with the account's `name` when it has one (events carry no `name: undefined`). */
export function named<E extends MemquotaEvent>(event: E, name: string | undefined): E {
  return name === undefined ? event : { ...event, name };
}

/**
 * A subject whose `next` called from inside one of its own subscribers is queued and emitted
 * once the current emission has reached every subscriber.
 */
class OrderedEmitter<T> {
  #queue: T[] = [];
  #head = 0;
  #emitting = false;

  constructor(private readonly subject: Subject<T>) {}

  emit(value: T): void {
    if (this.#emitting) {
      this.#queue.push(value);
      return;
    }
    this.#emitting = true;
    try {
      this.subject.next(value);
      while (this.#head < this.#queue.length) this.subject.next(this.#queue[this.#head++]!);
    } finally {
      this.#queue.length = 0;
      this.#head = 0;
      this.#emitting = false;
    }
  }
}

/** The observable side of a tracker. */
export class Signals {
  readonly #events = new Subject<MemquotaEvent>();
  readonly #usage = new Subject<Usage>();
  readonly #pressure = new BehaviorSubject<'normal' | 'high'>('normal');
  readonly #usageQueue = new OrderedEmitter(this.#usage);
  readonly #pressureQueue = new OrderedEmitter(this.#pressure);
  #usageWatchers = 0;

  /** Events of the tracker's life; see `MemoryQuotaTracker.events$`. */
  readonly events$: Observable<MemquotaEvent> = this.#events.asObservable();
  /** See `MemoryQuotaTracker.usage$`. */
  readonly usage$: Observable<Usage>;
  /** See `MemoryQuotaTracker.pressure$`. */
  readonly pressure$: Observable<'normal' | 'high'> = this.#pressure.asObservable();

  /**
   * @param snapshot Builds the current usage.
   * @param watchersChanged Called when `usage$` gains its first or loses its last subscriber.
   */
  constructor(snapshot: () => Usage, watchersChanged: () => void) {
    this.usage$ = new Observable<Usage>((subscriber) => {
      subscriber.next(snapshot());
      if (++this.#usageWatchers === 1) watchersChanged();
      const subscription = this.#usage.subscribe(subscriber);
      return () => {
        subscription.unsubscribe();
        if (--this.#usageWatchers === 0) watchersChanged();
      };
    });
  }

  /** Whether anyone listens to `events$` (events are built only then). */
  get eventsObserved(): boolean {
    return this.#events.observed;
  }

  /** Whether anyone subscribes to `usage$`. */
  get usageWatched(): boolean {
    return this.#usageWatchers !== 0;
  }

  event(event: MemquotaEvent): void {
    if (this.#events.observed) this.#events.next(event);
  }

  usage(usage: Usage): void {
    this.#usageQueue.emit(usage);
  }

  pressure(state: 'normal' | 'high'): void {
    this.#pressureQueue.emit(state);
  }

  /** Completes all three. */
  complete(): void {
    this.#events.complete();
    this.#usage.complete();
    this.#pressure.complete();
  }
}
