/**
 * The observer an operator subscribes to its source with.
 *
 * It is both an Observer and a `Subscription`, so RxJS uses it as the subscriber itself,
 * without a wrapper: unsubscribing it (as the downstream teardown does) stops a synchronous
 * source at once, the way RxJS's own operators chain their subscribers, with public API only.
 * After it is closed it forwards nothing.
 *
 * @module
 */
import { Subscription, type Observer } from 'rxjs';

/** What a {@link SourceSink} forwards the source's notifications to. */
export interface SourceHandler<T> {
  onSourceNext(value: T): void;
  onSourceError(err: unknown): void;
  onSourceComplete(): void;
}

/** A source subscriber that forwards to a handler while it is open. */
export class SourceSink<T> extends Subscription implements Observer<T> {
  constructor(private readonly handler: SourceHandler<T>) {
    super();
  }

  next(value: T): void {
    if (!this.closed) this.handler.onSourceNext(value);
  }

  error(err: unknown): void {
    if (!this.closed) this.handler.onSourceError(err);
  }

  complete(): void {
    if (!this.closed) this.handler.onSourceComplete();
  }
}
