/**
 * rxjs-memquota: a process-wide memory quota for RxJS pipelines and Node.js servers.
 *
 * ## Glossary
 * - **tracker** (`MemoryQuotaTracker`): one quota system. It knows `max`, `lowWater` and the
 *   exact total `used` by every live participant; trackers never interact.
 * - **account** (`Account`): the unit of reclamation. All memory in an account is treated
 *   alike. Accounts form a hierarchy (several parents allowed, never a cycle): reclaiming an
 *   account reclaims all its descendants, never its ancestors.
 * - **participant** (`Participant`): an object that holds memory (a queue, a cache). It tells
 *   the timestamp of its oldest data and frees memory when asked to reclaim.
 * - **participation** (`Participation`): the participant's handle for `claim` / `release`.
 * - **reclamation**: when `used > max`, on the tracker's scheduler, the account with the
 *   oldest data (or the most bytes) is chosen as victim; it and its descendants are asked to
 *   reclaim; this repeats until `used ≤ lowWater`.
 * - **hysteresis**: stopping at `lowWater`, well under `max`, so reclamation does not run
 *   again at the very next claim. `pressure$` uses the same band (`softMax` / `lowWater`).
 * - **data age**: a participant's `getOldest()`, on the tracker's clock `tracker.now()`. An
 *   account's age is its own participants' oldest; children do not make it older.
 *
 * ## Invariants
 * - `tracker.used = Σ participation.claimed` over live participants, after every call.
 * - `account.used = Σ` its own participants' claims.
 * - A torn-down account or participant holds 0 bytes and is out of the books.
 * - A call that throws changed nothing.
 * `tracker.audit()` recomputes all of these; every spec calls it after every step.
 *
 * ## Ownership
 * - Whoever stands for an account (a connection, a server) holds an `Account` handle; the last
 *   handle closed tears the account down and releases its memory.
 * - The tracker holds participants weakly: a participant that is garbage-collected counts as
 *   freed. A participant usually holds its `Participation`; a participation does not keep its
 *   account open. Parent/child links keep nothing alive.
 * - A handle garbage-collected without `close()` counts as closed (`FinalizationRegistry`).
 *
 * ## Reentrancy: what callbacks may do
 * - No callback runs before the transaction that triggered it is complete: the books are
 *   whole (the invariants above hold) whenever participant or subscriber code runs.
 * - `Participant.getOldest()` must only read; if it throws, the participant is torn down; if it
 *   returns something other than a number or `undefined` (NaN), that is reported
 *   (`invalid-age`) and its data counts as the oldest.
 * - `Participant.reclaim()`, and any subscriber of `events$`, `usage$`, `pressure$` or
 *   `collapsed$`, may call `claim`, `release`, `close`, `destroy`, `newAccount` on any handle;
 *   reclamation reads `used` afresh after every answer. A `pressure$` or `usage$` change a
 *   subscriber causes reaches every subscriber after the current emission, in order (no nested
 *   emission); `events$` tells events as they happen.
 * - A `reclaim()` answer is inspected inside the guard: a hostile answer (a throwing `then`, a
 *   revoked Proxy) is the participant's fault. An answer that never comes is cut off by the
 *   reclaim deadline (`reclaimTimeout`); `shutdown()` always resolves `settled()`.
 * - `Participant.accountCollapsed?(reason)` is told once when the account is torn down, after
 *   the books are settled.
 * - Reclamation never runs inside `claim` on an asynchronous scheduler (the default). With a
 *   synchronous one (`queueScheduler`) it runs at the end of the claim that crossed `max`. A
 *   run yields to the event loop between batches.
 *
 * ## Errors (as tor-memquota: the account is looked up first)
 * - `AccountClosed`: the account was closed, reclaimed or torn down, also for a `claim`
 *   through a participation of that account (or a clone of one);
 * - `ParticipantShutdown`: the account is open but this participant was torn down, or this
 *   participation handle was closed;
 * - `TrackerShutdown`, `TrackerCorrupted`, `ChildAccountAlreadyExists`.
 *
 * @packageDocumentation
 */
export { MemoryQuotaTracker, NO_DATA_SLOP, type AuditReport, type AccountOptions } from './lib/tracker.js';
export { Account, WeakAccount, Participation } from './lib/handles.js';
export { MemquotaError, MemoryReclaimedError, ConfigError, type MemquotaErrorKind } from './lib/errors.js';
export { autoMax, AUTO_MAX_FALLBACK, AUTO_MAX_FLOOR, AUTO_MAX_CEILING, AUTO_HEAP_SHARE } from './lib/config.js';
export type {
  CollapseReason,
  MemquotaConfig,
  MemquotaEvent,
  Participant,
  ParticipantFault,
  ReclaimCause,
  Reclaimed,
  TrackerOptions,
  TrackerStats,
  Usage,
  VictimPolicy,
} from './lib/types.js';
export { memoryCost } from './lib/cost.js';
export { memquota, type MemquotaOptions } from './operators/memquota.js';
export { memquotaQueue, type MemquotaQueueOptions, type MemquotaChannel, type QueueSender, type QueueReceiver } from './operators/memquotaQueue.js';
export type { OnReclaim } from './operators/internal/participantQueue.js';
export type { AccountArg } from './operators/internal/accountArg.js';
export { memquotaMap, type MemquotaMapOptions } from './operators/memquotaMap.js';
export { shedOnPressure, PressureError, type ShedOnPressureOptions } from './operators/shedOnPressure.js';
export { writeToStream, type WriteToStreamOptions, type WritableStreamLike, type WritableStreamWriterLike } from './operators/writeToStream.js';
