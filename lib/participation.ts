/**
 * `Participation`: a participant's handle for claiming and releasing memory.
 *
 * @module
 */
import { MemquotaError } from './errors.js';
import type { ParticipantRecord } from './records.js';
import { WeakAccount } from './account.js';
import { disposeSymbol } from './dispose.js';
import { invalidBytes } from './tracker.js';

/**
 * A participant's handle for `claim` and `release`.
 *
 * Reference-counted like `Account`: `clone()` adds a handle, `close()` drops one, and closing
 * the last tears the participant down (everything it claimed is released). A participation
 * does not keep its account open. Once the participant is torn down (reclaimed, account
 * closed, `destroy()`), `claim` throws `ParticipantShutdown`; `release` never throws except
 * `RangeError` for an invalid count.
 */
export class Participation implements Disposable {
  private rec: ParticipantRecord | null;

  /** @internal Use `account.registerParticipant()`. */
  constructor(rec: ParticipantRecord) {
    this.rec = rec;
    rec.tracker._participationFinalizer.register(this, rec, this);
  }

  /**
   * Records that the participant now holds `bytes` more.
   *
   * Never refused for being over quota: passing `max` schedules reclamation instead.
   *
   * @throws RangeError if `bytes` is negative, NaN, fractional, infinite or above
   *   `Number.MAX_SAFE_INTEGER` (nothing changes).
   * @throws MemquotaError `ParticipantShutdown` if the participant was torn down or this
   *   handle closed; `TrackerShutdown`, `TrackerCorrupted`.
   */
  claim(bytes: number): void {
    claimOn(this.rec, bytes);
  }

  /**
   * Records that the participant freed `bytes`. More than it holds is clamped (and reported
   * as a `participant-error` event). After tear-down or shutdown this is a no-op.
   *
   * @throws RangeError only, for an invalid count (nothing changes).
   */
  release(bytes: number): void {
    releaseOn(this.rec, bytes);
  }

  /** Bytes the participant has claimed and not released (0 once torn down). */
  get claimed(): number {
    const rec = this.rec;
    return rec === null || !rec.live ? 0 : rec.used;
  }

  /** Whether this handle is closed or the participant was torn down. */
  get closed(): boolean {
    return this.rec === null || !this.rec.live;
  }

  /**
   * Another handle onto the same participant.
   *
   * @throws MemquotaError `ParticipantShutdown` if it was torn down or this handle closed.
   */
  clone(): Participation {
    const rec = this.rec;
    if (rec === null || !rec.live) throw participantGone(this.rec);
    rec.handles++;
    return new Participation(rec);
  }

  /** Drops this handle; the last one tears the participant down. Idempotent. */
  close(): void {
    const rec = this.rec;
    if (rec === null) return;
    this.rec = null;
    const tracker = rec.tracker;
    tracker._participationFinalizer.unregister(this);
    tracker._dropParticipantHandle(rec);
  }

  /** Same as `close()`, for `using`. */
  [disposeSymbol](): void {
    this.close();
  }

  /**
   * Tears the participant down now, whatever other handles exist: everything it claimed is
   * released and every handle becomes dead. Idempotent.
   */
  destroy(): void {
    const rec = this.rec;
    if (rec === null) return;
    rec.tracker._teardownParticipant(rec);
  }

  /**
   * The participant's account, as a handle that does not keep it open.
   *
   * @throws MemquotaError `ParticipantShutdown` if this handle was closed.
   */
  account(): WeakAccount {
    if (this.rec === null) throw participantGone(this.rec);
    return new WeakAccount(this.rec.account);
  }
}

/**
 * @internal A claim on a participant's record: the checks every claim makes, then the
 * transaction. `Participation.claim` and the operators' own participants both come here.
 */
export function claimOn(rec: ParticipantRecord | null, bytes: number): void {
  if (!(Number.isSafeInteger(bytes) && bytes >= 0)) throw invalidBytes('claim', bytes);
  if (rec === null || !rec.live) throw participantGone(rec);
  rec.tracker._claim(rec, bytes);
}

/** @internal A release on a participant's record; a no-op once it is gone. */
export function releaseOn(rec: ParticipantRecord | null, bytes: number): void {
  if (!(Number.isSafeInteger(bytes) && bytes >= 0)) throw invalidBytes('release', bytes);
  if (rec === null || !rec.live) return;
  rec.tracker._release(rec, bytes);
}

/** The error for using a participant that is gone (`null`: the handle was closed). */
function participantGone(rec: ParticipantRecord | null): MemquotaError {
  if (rec === null) return new MemquotaError('ParticipantShutdown', 'this Participation handle was closed');
  rec.tracker._checkUsable();
  const state = rec.account.state;
  const why =
    state === 'reclaimed' ? 'its account was reclaimed' : state === 'closed' ? 'its account was closed' : 'it was torn down (destroyed, reclaimed or collected)';
  return new MemquotaError('ParticipantShutdown', `the participant is gone: ${why}`);
}
