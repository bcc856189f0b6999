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
 * Internal: not part of the public API. (Not tagged as such: with `stripInternal`, a tag in
 * the file's first comment strips its first import from the declarations.)
 */
import type { ParticipantRecord } from './books.js';
import { claimCounted, isAccount as isAccountHandle, recordOfAccount, registerRecord, releaseCounted, type Account } from './handles.js';
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

/**
 * Claims `bytes` on the share, with the errors of `Participation.claim` for a gone share. The
 * count must already be valid: operators check every cost answer once, with `checkedCost`
 * (the same rule as `claim`), and claim and release exactly those counts.
 */
export function claimShare(share: Share, bytes: number): void {
  claimCounted(share, bytes);
}

/** Releases `bytes` (a count claimed earlier) on the share: a no-op once it is gone. */
export function releaseShare(share: Share, bytes: number): void {
  releaseCounted(share, bytes);
}

/** Tears the share down: everything it claimed is released. Idempotent. */
export function dropShare(share: Share): void {
  share.account.ledger.teardownParticipant(share);
}

/** The tracker the share books into (for `now()`, `used`, `lowWater`). */
export function trackerOf(share: Share): MemoryQuotaTracker {
  return share.account.ledger.owner as MemoryQuotaTracker;
}
