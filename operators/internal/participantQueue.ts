/**
 * The participant queue: the engine shared by `memquota` and `memquotaQueue`.
 *
 * A FIFO of values, each claimed (its cost) when it enters and released when it leaves. It is
 * the `Participant` the tracker sees: its data age is the arrival time of its oldest value,
 * and on reclamation it either collapses (tells its owner, then drops and releases everything)
 * or, with `'drop-oldest'`, sheds its oldest values and stays alive.
 *
 * The queue *has* its storage, a {@link CostRing} (allocated with the first value), and
 * is subclassed by the operator's per-subscription object, so an idle stream is one object
 * plus an empty ring holder; nothing is allocated per value.
 *
 * ## Order of a value's bookkeeping
 * A value is stored first and claimed after: the claim can run user code (`pressure$` and
 * `usage$` subscribers, reclamation on a synchronous tracker scheduler), and that code must see
 * the value in the queue: as this queue's data age, so that a fresh queue whose value crossed
 * `max` is itself a candidate, and ahead of anything pushed meanwhile. A claim that throws
 * (which happens before any user code runs) takes the value out again.
 *
 * ## Ends
 * When the quota system tears the queue down (reclaimed, account closed, tracker shut down),
 * the owner is told first (`collapsed`), while the queue still holds its values, and the queue
 * is freed after, as RxJS tells a subscriber before tearing upstream down. A claim refused
 * because the quota system already tore the queue down but has not yet told it (a value pushed
 * from inside the account's `collapse` event, or during `tracker.shutdown()`) ends the same
 * way, with a `MemoryReclaimedError` naming the reason, never a raw `MemquotaError`.
 *
 * @module
 */
import type { Account } from '../../lib/handles.js';
import { MemoryReclaimedError, MemquotaError } from '../../lib/errors.js';
import { claimShare, dropShare, registerShare, releaseShare, trackerOf, type Share } from '../../lib/seam.js';
import type { CollapseReason, Participant, Reclaimed } from '../../lib/types.js';
import { CostRing } from './costQueue.js';
import type { OnReclaim } from './options.js';

export type { OnReclaim };

/**
 * What every queue of one operator shares: made once when the operator is created (or the
 * channel opened), so that each subscription holds one pointer to it.
 */
export interface QueueSettings<T> {
  /** The byte cost of a value (validated per value with `checkedCost`). */
  readonly cost: (value: T) => number;
  /** What a reclaimed queue does. */
  readonly onReclaim: OnReclaim;
  /** Whether each queue owns its account (made by a factory, closed with the queue). */
  readonly ownsAccount: boolean;
}

/**
 * Why a participant that claims on `account` finds its share gone, from the error its claim
 * threw; `null` when the error is not about that (a RangeError, a corrupted tracker).
 */
export function goneReason(account: Account, err: unknown): CollapseReason | null {
  if (!(err instanceof MemquotaError)) return null;
  if (err.kind === 'TrackerShutdown') return 'tracker-shutdown';
  if (err.kind !== 'AccountClosed' && err.kind !== 'ParticipantShutdown') return null;
  // The account tells its reason at once once torn down (an error path: a subscription is fine).
  let reason: CollapseReason = 'closed';
  try {
    account.collapsed$.subscribe((r) => (reason = r)).unsubscribe();
  } catch {
    // the handle itself was closed: 'closed'
  }
  return reason;
}

/**
 * A queue of values registered as one participant of an account.
 *
 * Subclasses say what a tear-down by the quota system means to their subscriber in
 * `collapsed(error)` (`error` is `undefined` when `onReclaim` is `'complete'`). The owner's own
 * teardown is `close()`, which does not call `collapsed`.
 */
export abstract class ParticipantQueue<T> implements Participant {
  /** The values, their costs and arrival times; `null` until the first value. */
  private ring: CostRing<T> | null = null;
  /** This queue's record in the books (the operators claim on it without a handle). */
  private readonly share: Share;
  /** True once torn down, by the owner (`close`) or by the quota system: takes no more values. */
  gone = false;

  /** @throws what registration throws (closed account, shut-down tracker). */
  constructor(
    private readonly account: Account,
    protected readonly settings: QueueSettings<T>,
  ) {
    this.share = registerShare(account, this);
  }

  /** Told by the quota system that the queue is gone, before it is freed. */
  protected abstract collapsed(error: MemoryReclaimedError | undefined): void;

  /** Number of values held. */
  get length(): number {
    return CostRing.lengthOf(this.ring);
  }

  /**
   * Stores `value`, then claims `cost` (see the module doc). Returns false if the queue is
   * gone afterwards (the claim made the quota system tear it down, or found it torn down: then
   * the owner was told through `collapsed`). Throws what `claim` throws otherwise (a RangeError),
   * with the queue unchanged.
   */
  enqueue(value: T, cost: number): boolean {
    const share = this.share;
    const ring = (this.ring = CostRing.push(this.ring, value, cost, trackerOf(share).now()));
    try {
      claimShare(share, cost);
    } catch (err) {
      return this.refused(ring, err);
    }
    return !this.gone;
  }

  /** A claim threw (out of `enqueue`'s hot path): takes the value out, then collapses or rethrows. */
  private refused(ring: CostRing<T>, err: unknown): false {
    ring.popNewest(); // a claim throws before it runs any user code: the newest is ours
    const reason = goneReason(this.account, err);
    if (reason === null) throw err;
    this.collapse(reason);
    return false;
  }

  /**
   * Removes the oldest value and releases its cost; call only when `length > 0`. The release
   * can run user code: the caller checks that its subscriber is still there before handing on.
   */
  dequeue(): T {
    const ring = this.ring!;
    const cost = ring.oldestCost();
    const value = ring.shift();
    releaseShare(this.share, cost);
    return value;
  }

  /** The owner's teardown: drops and releases everything; closes an owned account. Idempotent. */
  close(): void {
    this.gone = true;
    this.ring?.clear();
    // An owned account first: it tears our share down with the account, in one transaction
    // whose `collapse` event reports what was released.
    if (this.settings.ownsAccount) this.account.close();
    dropShare(this.share);
  }

  /**
   * The account was torn down (see `Participant` in the core: an optional member the tracker
   * calls after the books are settled). Reclamation normally reaches us through `reclaim()`
   * first (then we are gone already); a queue that joined an account while it was being
   * reclaimed is torn down without being asked, so every reason collapses it here.
   */
  accountCollapsed(reason: CollapseReason): void {
    this.collapse(reason);
  }

  /** @see Participant.getOldest */
  getOldest(): number | undefined {
    return CostRing.oldestTimeOf(this.ring);
  }

  /** @see Participant.reclaim */
  reclaim(): Reclaimed {
    if (this.gone) return 'collapsing';
    if (this.settings.onReclaim === 'drop-oldest') {
      // Free our share of the excess: the oldest values, until the tracker would be back at
      // lowWater (or we are empty). The tracker re-reads our age and asks again if needed.
      const tracker = trackerOf(this.share);
      const excess = tracker.used - tracker.lowWater;
      let freed = 0;
      while (!this.gone && this.ring !== null && this.ring.count > 0 && freed < excess) {
        freed += this.ring.oldestCost();
        this.dequeue();
      }
      return 'partial';
    }
    this.collapse('reclaimed');
    return 'collapsing';
  }

  /** Tells the owner, then frees everything. */
  private collapse(reason: CollapseReason): void {
    if (this.gone) return;
    this.gone = true;
    try {
      this.collapsed(this.settings.onReclaim === 'complete' && reason === 'reclaimed' ? undefined : new MemoryReclaimedError(reason));
    } finally {
      this.close();
    }
  }
}
