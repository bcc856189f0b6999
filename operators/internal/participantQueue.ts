/**
 * The participant queue: the engine shared by `memquota` and `memquotaQueue`.
 *
 * A FIFO of values, each claimed (its cost) when it enters and released when it leaves. It is
 * the `Participant` the tracker sees: its data age is the arrival time of its oldest value,
 * and on reclamation it either collapses (drops and releases everything, then tells the
 * operator through `gone`) or, with `'drop-oldest'`, sheds its oldest values and stays alive.
 *
 * One object per subscription (or per channel), which is also the ring buffer itself: an idle
 * stream costs as few objects as possible, and nothing is allocated per value.
 *
 * @module
 */
import type { Account } from '../../lib/account.js';
import { MemoryReclaimedError } from '../../lib/errors.js';
import { claimShare, dropShare, registerShare, releaseShare, trackerOf, type CollapseListener, type Share } from '../../lib/seam.js';
import type { CollapseReason, Participant, Reclaimed } from '../../lib/types.js';
import { CostQueue } from './costQueue.js';

/** What a queue operator does when its account is reclaimed. */
export type OnReclaim = 'error' | 'complete' | 'drop-oldest';

/** Checks an `onReclaim` option when the operator is created. */
export function checkOnReclaim(value: unknown, operator: string): OnReclaim {
  if (value === undefined) return 'error';
  if (value === 'error' || value === 'complete' || value === 'drop-oldest') return value;
  throw new TypeError(`${operator}: onReclaim must be 'error', 'complete' or 'drop-oldest', got ${String(value)}`);
}

/** Checks a `cost` option when the operator is created. */
export function checkCost(value: unknown, operator: string): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`${operator}: cost must be a function (value) => bytes, got ${typeof value}`);
  }
}

/** Validates a cost function's answer; a bad one is the same RangeError `claim` would give. */
export function checkedCost(bytes: unknown): number {
  if (typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes >= 0) return bytes;
  throw new RangeError(`cost returned ${String(bytes)}: it must be a non-negative safe integer of bytes`);
}

/**
 * A queue of values registered as one participant of an account.
 *
 * Subclasses say what happens when the quota system tears the queue down (reclaimed, account
 * closed, tracker shut down) in `gone(error)`; `error` is `undefined` when `onReclaim` is
 * `'complete'`. The owner's own teardown is `close()`, which does not call `gone`.
 */
export abstract class ParticipantQueue<T> extends CostQueue<T> implements Participant, CollapseListener {
  /** This queue's record in the books (the operators claim on it without a handle). */
  private readonly share: Share;
  /** The account to close with the queue (a factory's), or `null` for a shared one. */
  private readonly ownedAccount: Account | null;
  /** True once torn down, by the owner (`close`) or by the quota system. */
  gone = false;

  /** @throws what registration throws (closed account, shut-down tracker). */
  constructor(
    account: Account,
    ownsAccount: boolean,
    private readonly onReclaim: OnReclaim,
  ) {
    super();
    this.share = registerShare(account, this);
    this.ownedAccount = ownsAccount ? account : null;
  }

  /** Told by the quota system that the queue is gone; `error` is what to signal. */
  protected abstract collapsed(error: MemoryReclaimedError | undefined): void;

  /**
   * Claims `cost` and appends `value`. Throws what `claim` throws (the queue is unchanged).
   * Returns false if the claim made the quota system tear the queue down (synchronous
   * schedulers run reclamation at the end of the claim).
   */
  enqueue(value: T, cost: number): boolean {
    claimShare(this.share, cost);
    if (this.gone) return false;
    this.push(value, cost, trackerOf(this.share).now());
    return true;
  }

  /** Removes the oldest value and releases its cost; call only when `length > 0`. */
  dequeue(): T {
    const cost = this.oldestCost();
    const value = this.shift();
    releaseShare(this.share, cost);
    return value;
  }

  /** The owner's teardown: drops and releases everything; closes an owned account. */
  close(): void {
    if (this.gone) return;
    this.gone = true;
    this.teardown();
  }

  /**
   * @internal The account was torn down. Reclamation normally reaches us through `reclaim()`
   * first (then we are gone already); a queue that joined an account while it was being
   * reclaimed is torn down without being asked, so every reason collapses it here.
   */
  accountCollapsed(reason: CollapseReason): void {
    this.collapse(reason);
  }

  /** @see Participant.getOldest */
  getOldest(): number | undefined {
    return this.oldestTime();
  }

  /** @see Participant.reclaim */
  reclaim(): Reclaimed {
    if (this.gone) return 'collapsing';
    if (this.onReclaim === 'drop-oldest') {
      // Free our share of the excess: the oldest values, until the tracker would be back at
      // lowWater (or we are empty). The tracker re-reads our age and asks again if needed.
      const tracker = trackerOf(this.share);
      const excess = tracker.used - tracker.lowWater;
      let freed = 0;
      while (this.length > 0 && freed < excess) {
        freed += this.oldestCost();
        this.dequeue();
      }
      return 'partial';
    }
    this.collapse('reclaimed');
    return 'collapsing';
  }

  private collapse(reason: CollapseReason): void {
    if (this.gone) return;
    this.gone = true;
    this.teardown();
    this.collapsed(this.onReclaim === 'complete' && reason === 'reclaimed' ? undefined : new MemoryReclaimedError(reason));
  }

  private teardown(): void {
    this.clear();
    dropShare(this.share);
    this.ownedAccount?.close();
  }
}
