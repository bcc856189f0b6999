/**
 * The participant queue: the engine shared by `memquota` and `memquotaQueue`.
 *
 * A FIFO of values, each claimed (its cost) when it enters and released when it leaves. It is
 * the `Participant` the tracker sees: its data age is the arrival time of its oldest value,
 * and on reclamation it either collapses (drops and releases everything, then tells its
 * owner through `onGone`) or, with `'drop-oldest'`, sheds its oldest values and stays alive.
 *
 * One instance per subscription (or per channel); nothing is allocated per value.
 *
 * @module
 */
import type { Account } from '../../lib/account.js';
import { MemoryReclaimedError } from '../../lib/errors.js';
import type { Participation } from '../../lib/participation.js';
import type { MemoryQuotaTracker } from '../../lib/tracker.js';
import type { CollapseListener } from '../../lib/records.js';
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
 * `onGone(error)` is called once when the queue is torn down by the quota system (reclaimed,
 * account closed, tracker shut down); `error` is `undefined` when `onReclaim` is
 * `'complete'`. The owner's own teardown is `close()`, which does not call `onGone`.
 */
export class ParticipantQueue<T> implements Participant, CollapseListener {
  private readonly values = new CostQueue<T>();
  private readonly participation: Participation;
  private readonly tracker: MemoryQuotaTracker;
  /** True once torn down, by the owner (`close`) or by the quota system. */
  gone = false;

  constructor(
    private readonly account: Account,
    private readonly ownsAccount: boolean,
    private readonly onReclaim: OnReclaim,
    private readonly onGone: (error: MemoryReclaimedError | undefined) => void,
  ) {
    this.tracker = account.tracker;
    this.participation = account.registerParticipant(this);
    account._watchCollapse(this);
  }

  /** @internal Reclamation reaches us through reclaim(); the other ways an account ends, here. */
  accountCollapsed(reason: CollapseReason): void {
    if (reason !== 'reclaimed') this.collapse(reason);
  }

  /** Number of values held. */
  get length(): number {
    return this.values.length;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.values.bytes;
  }

  /**
   * Claims `cost` and appends `value`. Throws what `claim` throws (the queue is unchanged).
   * Returns false if the claim made the quota system tear the queue down (synchronous
   * schedulers run reclamation at the end of the claim).
   */
  enqueue(value: T, cost: number): boolean {
    this.participation.claim(cost);
    if (this.gone) return false;
    this.values.push(value, cost, this.tracker.now());
    return true;
  }

  /** Removes the oldest value and releases its cost; call only when `length > 0`. */
  dequeue(): T {
    const value = this.values.shift();
    this.participation.release(this.values.lastCost);
    return value;
  }

  /** The owner's teardown: drops and releases everything; closes an owned account. */
  close(): void {
    if (this.gone) return;
    this.gone = true;
    this.teardown();
  }

  /** @see Participant.getOldest */
  getOldest(): number | undefined {
    return this.values.oldestTime();
  }

  /** @see Participant.reclaim */
  reclaim(): Reclaimed {
    if (this.gone) return 'collapsing';
    if (this.onReclaim === 'drop-oldest') {
      // Free our share of the excess: the oldest values, until the tracker would be back at
      // lowWater (or we are empty). The tracker re-reads our age and asks again if needed.
      const excess = this.tracker.used - this.tracker.lowWater;
      let freed = 0;
      while (this.values.length > 0 && freed < excess) {
        this.dequeue();
        freed += this.values.lastCost;
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
    this.onGone(this.onReclaim === 'complete' && reason === 'reclaimed' ? undefined : new MemoryReclaimedError(reason));
  }

  private teardown(): void {
    this.values.clear();
    this.account._unwatchCollapse(this);
    this.participation.close();
    if (this.ownsAccount) this.account.close();
  }
}
