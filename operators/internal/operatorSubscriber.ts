/**
 * The one subscriber shape of every operator here, in the spirit of RxJS's own
 * `OperatorSubscriber` (which 7.8 does not export).
 *
 * An {@link OperatorSubscriber} is what an operator subscribes to its source with, and to
 * each inner observable. It forwards `next`, `error` and `complete` to handler functions, and:
 * - after `error` or `complete` (or once unsubscribed) it forwards nothing more, so a source
 *   that misbehaves (`next` after `complete`) is ignored;
 * - a handler that throws sends the error to the destination (the downstream subscriber)
 *   first, then tears this subscriber down;
 * - `error` and `complete` call their handler first (which tells the destination) and then
 *   unsubscribe, so the upstream's teardown (`finalize`) runs after the subscriber heard the
 *   end, as in RxJS;
 * - `onFinalize` runs exactly once, when it is unsubscribed for whatever reason.
 *
 * It is a `Subscription` with `next`/`error`/`complete`, so RxJS uses it as the subscriber
 * itself, without a wrapper: unsubscribing it stops a synchronous source at once (`take(3)`).
 *
 * The handlers are a table of plain functions shared by every subscription of an operator,
 * given the operator's per-subscription state as their first argument (as a scheduler's work
 * gets its state): nothing is allocated per subscription beyond this object, and no closure.
 *
 * @module
 */
import { Subscription, type Observer } from 'rxjs';

/** Who hears an error that a handler threw: the operator's downstream subscriber. */
export interface ErrorDestination {
  readonly closed: boolean;
  error(err: unknown): void;
}

/**
 * What an {@link OperatorSubscriber} calls. `S` is the operator's state for one subscription,
 * `T` the type of the values, `F` the subscriber's own type (a subclass may carry data).
 */
export interface OperatorHandlers<S, T, F = unknown> {
  onNext(state: S, value: T, from: F): void;
  onError(state: S, err: unknown, from: F): void;
  onComplete(state: S, from: F): void;
  /** Runs once, when the subscriber is unsubscribed (after `onError`/`onComplete`, or alone). */
  onFinalize?(state: S, from: F): void;
}

/** A source's or an inner observable's subscriber; see the module doc. */
export class OperatorSubscriber<S, T, F = unknown> extends Subscription implements Observer<T> {
  /** True after `error`/`complete` or unsubscription: nothing more is forwarded. */
  private stopped = false;

  constructor(
    private readonly destination: ErrorDestination,
    private readonly handlers: OperatorHandlers<S, T, F>,
    private readonly state: S,
  ) {
    super();
  }

  next(value: T): void {
    if (this.stopped) return;
    try {
      this.handlers.onNext(this.state, value, this as unknown as F);
    } catch (err) {
      this.fail(err);
    }
  }

  error(err: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.handlers.onError(this.state, err, this as unknown as F);
    } catch (thrown) {
      this.tell(thrown);
    }
    this.unsubscribe();
  }

  complete(): void {
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.handlers.onComplete(this.state, this as unknown as F);
    } catch (thrown) {
      this.tell(thrown);
    }
    this.unsubscribe();
  }

  override unsubscribe(): void {
    if (this.closed) return;
    this.stopped = true;
    try {
      super.unsubscribe();
    } finally {
      this.handlers.onFinalize?.(this.state, this as unknown as F);
    }
  }

  /** A handler threw: the destination hears it first, then this subscriber is torn down. */
  private fail(err: unknown): void {
    this.stopped = true;
    this.tell(err);
    this.unsubscribe();
  }

  private tell(err: unknown): void {
    if (!this.destination.closed) this.destination.error(err);
  }
}
