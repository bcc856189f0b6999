/**
 * The operators' one way into the books.
 *
 * Operator participants (the queues of `memquota`, `memquotaQueue`, `memquotaMap`, the Node
 * sinks) claim on their record directly, without a `Participation` handle, to keep an idle
 * stream small. Everything they need from the core is here, and only here: `operators/` and
 * `node/` import no other internal of `lib/`. The functions are stable across changes of the
 * core; their implementation may move.
 *
 * @module
 * @internal
 */
import type { ParticipantRecord } from './books.js';
import { claimOn, isAccount as isAccountHandle, recordOfAccount, registerRecord, releaseOn, type Account } from './handles.js';
import type { MemoryQuotaTracker } from './tracker.js';
import type { Participant } from './types.js';

export type { CollapseListener } from './books.js';

/** An operator participant's record in the books (opaque to operators). */
export type Share = ParticipantRecord;

/**
 * Whether `value` is an `Account` handle of this library, made by this copy of the package or
 * another (the ESM and CJS builds in one process): a brand check, not `instanceof`.
 */
export function isAccount(value: unknown): value is Account {
  return isAccountHandle(value);
}

/**
 * Registers `participant` in `account` and returns its record. The tracker holds the
 * participant weakly; if it has an `accountCollapsed(reason)` method it is told of the
 * account's tear-down.
 *
 * @throws what registration throws (closed account, shut-down tracker, not a participant).
 */
export function registerShare(account: Account, participant: Participant): Share {
  return registerRecord(recordOfAccount(account, 'account'), participant);
}

/** Claims `bytes` on the share: the checks and errors of `Participation.claim`. */
export function claimShare(share: Share, bytes: number): void {
  claimOn(share, bytes);
}

/** Releases `bytes` on the share: a no-op once it is gone; RangeError for a bad count. */
export function releaseShare(share: Share, bytes: number): void {
  releaseOn(share, bytes);
}

/** Tears the share down: everything it claimed is released. Idempotent. */
export function dropShare(share: Share): void {
  share.account.ledger.teardownParticipant(share);
}

/** The tracker the share books into (for `now()`, `used`, `lowWater`). */
export function trackerOf(share: Share): MemoryQuotaTracker {
  return share.account.ledger.owner as MemoryQuotaTracker;
}
