/**
 * The sink engine shared by `writeTo` (Node `Writable`) and `writeToStream` (WHATWG
 * `WritableStream`): a participant whose bytes are the values waiting for the sink **and** the
 * values handed to it whose write has not called back yet.
 *
 * ## Books
 * Every value is claimed (its cost) once, when it arrives from the source, and released once,
 * when the sink says it has taken it (Node's write callback, the WHATWG write promise).
 * Between the two it is in exactly one of two FIFOs:
 *
 *     share.claimed = Σ waiting.cost + Σ inFlight.cost
 *
 * `waiting` holds values the sink is too full to take (`write()` returned false, or the
 * writer's `desiredSize` fell to 0); `inFlight` holds the cost and arrival time of each value
 * handed over, in the order handed. Both sinks call back in write order (Node calls write
 * callbacks in order; WHATWG write promises settle in order), so one shared callback pops the
 * head of `inFlight`: no closure per value. The data age is the arrival time of the oldest
 * value held, which is the head of `inFlight` if any (handed over first), else the head of
 * `waiting`: a client that stopped reading while its socket buffer fills is the oldest.
 *
 * ## Ending
 * One object per subscription is the source's subscriber (a `Subscription`, so RxJS uses it
 * as is and a synchronous source stops as soon as it is closed), the participant and the
 * downstream teardown. It ends exactly once, through `finish(outcome)`: the books first (all
 * released, the share dropped, an owned account closed), then the source, then the sink
 * (`closeSink`, decided by the subclass), then the subscriber.
 *
 * ## Reentrancy
 * `reclaim()` and `accountCollapsed()` may come inside a claim (synchronous tracker
 * schedulers): `next` re-checks `gone` after claiming. The sink's callbacks arriving after the
 * end find `gone` and do nothing.
 *
 * @module
 * Internal: not part of the public API. (Not tagged as such: with `stripInternal`, a tag in
 * the file's first comment strips its first import from the declarations.)
 */
import { Subscription, type Observer, type Subscriber } from 'rxjs';
import type { Account } from '../../lib/handles.js';
import { memoryCost } from '../../lib/cost.js';
import { MemoryReclaimedError } from '../../lib/errors.js';
import { claimShare, dropShare, registerShare, releaseShare, trackerOf, type Share } from '../../lib/seam.js';
import type { CollapseReason, Participant, Reclaimed } from '../../lib/types.js';
import { CostRing } from './costQueue.js';
import { checkedCost } from './options.js';

/** How a sink subscription ended: normally, by an error, reclaimed, or unsubscribed. */
export type SinkOutcome =
  | { readonly kind: 'complete' }
  | { readonly kind: 'error'; readonly error: unknown }
  | { readonly kind: 'reclaimed'; readonly error: MemoryReclaimedError }
  | { readonly kind: 'unsubscribed' };

const COMPLETE: SinkOutcome = { kind: 'complete' };
const UNSUBSCRIBED: SinkOutcome = { kind: 'unsubscribed' };

/** UTF-8 length of a string without encoding it (browser-safe `Buffer.byteLength(s)`). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // a surrogate pair: 2 units, 4 bytes
        i++;
        continue;
      }
      bytes += 2; // a lone surrogate is written as U+FFFD (3 bytes)
    } else bytes += 2;
  }
  return bytes;
}

/**
 * The default cost of a sink: the bytes a chunk puts in the sink's buffer. `byteLength` for
 * an `ArrayBuffer` or a view (`Buffer`, `Uint8Array`, …), the UTF-8 length of a string, and
 * {@link memoryCost} for anything else (object-mode streams).
 */
export function chunkCost(value: unknown): number {
  if (typeof value === 'string') return utf8Length(value);
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer) return value.byteLength;
  return memoryCost(value);
}

/**
 * One subscription of a sink operator. Subclasses know the sink: whether it takes a value now
 * (`accepting`), how to hand one over (`write`), how to end it (`endSink`) and what to do with
 * it when the subscription ends (`closeSink`). They call `written()` once per value the sink
 * has taken (in order), `drained()` when it accepts again, and `sinkEnded()` / `sinkFailed()`
 * when it finished or broke.
 */
export abstract class SinkShare<T> extends Subscription implements Observer<T>, Participant {
  /** Values the sink is too full to take, with cost and arrival time. */
  private waiting: CostRing<T> | null = null;
  /** The cost and arrival time of each value handed to the sink and not yet called back. */
  private inFlight: CostRing<null> | null = null;
  private readonly share: Share;
  private readonly ownedAccount: Account | null;
  /** True once the subscription ended, for whatever reason. */
  protected gone = false;
  /** The source completed: end the sink once `waiting` is empty. */
  private sourceDone = false;
  /** True while `drained()` hands values over (a reentrant call returns at once). */
  private flushing = false;

  /** @throws what registration throws (closed account, shut-down tracker). */
  constructor(
    account: Account,
    ownsAccount: boolean,
    protected readonly destination: Subscriber<never>,
    private readonly cost: (value: T) => number,
    /** End (close) the sink when the source completes; otherwise complete once all is written. */
    private readonly endOnComplete: boolean,
  ) {
    super();
    this.share = registerShare(account, this);
    this.ownedAccount = ownsAccount ? account : null;
  }

  /** Whether the sink takes a value now. */
  protected abstract accepting(): boolean;
  /** Hands `value` to the sink; the sink calls `written()` for it later. May throw. */
  protected abstract write(value: T): void;
  /** Ends the sink after the last value; the sink calls `sinkEnded()` once it has finished. */
  protected abstract endSink(): void;
  /** The subscription ended: destroy, abort, detach… the sink. Must not throw. */
  protected abstract closeSink(outcome: SinkOutcome): void;

  // ---- the source's subscriber ----

  next(value: T): void {
    if (this.gone) return;
    let bytes: number;
    try {
      const cost = this.cost; // a plain call: user code never sees this object
      bytes = checkedCost(cost(value));
      claimShare(this.share, bytes);
    } catch (err) {
      this.finish({ kind: 'error', error: err });
      return;
    }
    if (this.gone) return; // a synchronous reclamation inside the claim
    const now = trackerOf(this.share).now();
    if (CostRing.lengthOf(this.waiting) > 0 || this.flushing || !this.accepting()) {
      this.waiting = CostRing.push(this.waiting, value, bytes, now);
      return;
    }
    this.handOver(value, bytes, now);
  }

  error(err: unknown): void {
    if (!this.gone) this.finish({ kind: 'error', error: err });
  }

  complete(): void {
    if (this.gone) return;
    this.sourceDone = true;
    if (CostRing.lengthOf(this.waiting) === 0) this.afterLastValue();
  }

  /** The downstream unsubscribed (or the subscription already ended: then only the source stops). */
  override unsubscribe(): void {
    if (this.gone) super.unsubscribe();
    else this.finish(UNSUBSCRIBED);
  }

  // ---- the participant ----

  /** @see Participant.getOldest */
  getOldest(): number | undefined {
    return CostRing.oldestTimeOf(this.inFlight) ?? CostRing.oldestTimeOf(this.waiting);
  }

  /** @see Participant.reclaim */
  reclaim(): Reclaimed {
    this.collapse('reclaimed');
    return 'collapsing';
  }

  /** @internal The account was torn down (closed, reclaimed, tracker shut down). */
  accountCollapsed(reason: CollapseReason): void {
    this.collapse(reason);
  }

  // ---- called by the subclass ----

  /** The sink took the oldest value handed over: release it. */
  protected written(): void {
    const inFlight = this.inFlight;
    if (this.gone || inFlight === null || inFlight.count === 0) return;
    const bytes = inFlight.oldestCost();
    inFlight.shift();
    releaseShare(this.share, bytes);
    if (this.sourceDone && !this.endOnComplete && CostRing.lengthOf(this.waiting) === 0 && inFlight.count === 0) this.finish(COMPLETE);
  }

  /** The sink accepts values again: hand over what waits, in order, while it accepts. */
  protected drained(): void {
    if (this.gone || this.flushing) return;
    this.flushing = true;
    const waiting = this.waiting;
    while (waiting !== null && waiting.count > 0 && !this.gone && this.accepting()) {
      const bytes = waiting.oldestCost();
      const arrivedAt = waiting.oldestTime();
      this.handOver(waiting.shift(), bytes, arrivedAt);
    }
    this.flushing = false;
    if (this.sourceDone && CostRing.lengthOf(waiting) === 0 && !this.gone) this.afterLastValue();
  }

  /** The sink finished after `endSink()`. */
  protected sinkEnded(): void {
    if (!this.gone) this.finish(COMPLETE);
  }

  /** The sink broke (its error, a failed write, closed early). */
  protected sinkFailed(error: unknown): void {
    if (!this.gone) this.finish({ kind: 'error', error });
  }

  // ---- internals ----

  /** Moves a claimed value into the sink; its claim now waits for the sink's callback. */
  private handOver(value: T, bytes: number, arrivedAt: number): void {
    this.inFlight = CostRing.push(this.inFlight, null, bytes, arrivedAt);
    try {
      this.write(value);
    } catch (err) {
      this.finish({ kind: 'error', error: err });
    }
  }

  private afterLastValue(): void {
    if (this.endOnComplete) {
      try {
        this.endSink();
      } catch (err) {
        this.finish({ kind: 'error', error: err });
      }
    } else if (CostRing.lengthOf(this.inFlight) === 0) this.finish(COMPLETE);
  }

  private collapse(reason: CollapseReason): void {
    if (!this.gone) this.finish({ kind: 'reclaimed', error: new MemoryReclaimedError(reason) });
  }

  /** The one way a subscription ends: books, source, sink, subscriber, in that order. */
  private finish(outcome: SinkOutcome): void {
    this.gone = true;
    this.waiting?.clear();
    this.inFlight?.clear();
    dropShare(this.share);
    this.ownedAccount?.close();
    super.unsubscribe();
    this.closeSink(outcome);
    if (outcome.kind === 'complete') this.destination.complete();
    else if (outcome.kind !== 'unsubscribed') this.destination.error(outcome.error);
  }
}
