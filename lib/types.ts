/**
 * Public types shared by the tracker core and the operators.
 *
 * @module
 */
import type { SchedulerLike } from 'rxjs';

/**
 * A participant's answer to a reclaim request.
 *
 * - `'collapsing'`: it freed (or is freeing) everything and is gone; the tracker tears it down
 *   and releases whatever it still has claimed.
 * - `'partial'`: it freed some memory (through `release`) and stays alive; the tracker
 *   re-reads its data age and goes on.
 */
export type Reclaimed = 'collapsing' | 'partial';

/**
 * An object that holds memory on behalf of an account: a queue, a cache, a buffer.
 *
 * ## What the tracker expects
 * - `getOldest()` returns the tracker-clock timestamp (`tracker.now()`) of the oldest data it
 *   holds, or `undefined` when it holds none. It must be cheap and must not change the books;
 *   if it throws, the participant is torn down and its memory released. The answer may only
 *   grow when the participant releases something (its oldest data left): reclamation trusts
 *   the ages it read until some participant releases.
 * - `reclaim()` is called when its account (or an ancestor) is chosen as a victim. It should
 *   free memory (calling `release`) and answer. While inside `reclaim()` the participant may
 *   call `claim`, `release`, `close`, `destroy`, `newAccount` on any handle. If it throws or
 *   its promise rejects, it counts as `'collapsing'`.
 *
 * The tracker holds a participant only weakly: if it is garbage-collected, its memory counts
 * as freed.
 */
export interface Participant {
  /** Timestamp (tracker clock, ms) of the oldest data held, or `undefined` for none. */
  getOldest(): number | undefined;
  /** Free everything (`'collapsing'`) or some (`'partial'`) of what is held. */
  reclaim(): Reclaimed | PromiseLike<Reclaimed>;
  /**
   * Optional: told once when the participant's account is torn down (`'reclaimed'`,
   * `'closed'`, `'tracker-shutdown'`), after the books are settled: the participant is already
   * out of the books, its claims released, its participation dead. It may drop its data, end
   * its stream, and call any handle of other participants or accounts (claim, release, close,
   * newAccount); a `claim` through its own participation throws `AccountClosed`. It is told
   * through the tracker's weak reference: a participant already collected is not told.
   */
  accountCollapsed?(reason: CollapseReason): void;
}

/**
 * Why an account was torn down, as emitted by `account.collapsed$`.
 *
 * - `'reclaimed'`: chosen as a victim (or a descendant of one) by reclamation.
 * - `'closed'`: its last `Account` handle was closed or garbage-collected.
 * - `'tracker-shutdown'`: its tracker was shut down.
 */
export type CollapseReason = 'reclaimed' | 'closed' | 'tracker-shutdown';

/** How reclamation picks its next victim account. */
export type VictimPolicy = 'oldest' | 'largest';

/**
 * The quota: bytes, or `'auto'` for a limit derived from the machine.
 *
 * - `max` (default `'auto'`): reclamation starts when total use passes it. `Infinity`
 *   disables tracking altogether (a no-op tracker).
 * - `lowWater` (default `'auto'` = 75 % of `max`): reclamation goes on until use is at or
 *   below it. Must be at most 98 % of `max`.
 * - `softMax` (default 90 % of `max`, never below `lowWater`): above it `pressure$` turns
 *   `'high'`; must lie between `lowWater` and `max`.
 */
export interface MemquotaConfig {
  /** Bytes, `'auto'` (default) or `Infinity` (disabled). */
  max?: number | 'auto';
  /** Bytes or `'auto'` (default: 75 % of `max`). */
  lowWater?: number | 'auto';
  /** Bytes or `'auto'` (default: 90 % of `max`, at least `lowWater`). */
  softMax?: number | 'auto';
}

/** Options of a tracker that are not part of the quota itself. */
export interface TrackerOptions {
  /** Clock for data ages, in ms. Default `performance.now`. */
  now?: () => number;
  /**
   * Where reclamation runs. Default `asapScheduler` (a microtask after the claim that crossed
   * `max`). With a synchronous scheduler (`queueScheduler`) reclamation runs at the end of
   * the `claim` call that crossed `max`, once the books are updated.
   */
  scheduler?: SchedulerLike;
  /** `'oldest'` data first (default) or `'largest'` account first. */
  victimPolicy?: VictimPolicy;
  /**
   * The reclaim deadline, in ms (default 10 000; `Infinity`: none). A participant that has not
   * answered `reclaim()` by then counts as collapsed (`participant-error`, fault
   * `'reclaim-timeout'`) and the run goes on. Its timer never keeps the process alive.
   */
  reclaimTimeout?: number;
  /**
   * Where a reclamation run yields between batches (so that it never blocks the event loop for
   * long). Default: a macrotask (`setImmediate`, else `setTimeout(0)`). Pass a
   * virtual scheduler (`TestScheduler`, `VirtualTimeScheduler`) to make yields deterministic.
   */
  yieldScheduler?: SchedulerLike;
  /**
   * The heap guard (Node): after each major GC, if the live heap is above `mark` × the
   * usable heap (`heap_size_limit` less V8's young generation; default 0.8), reclaim
   * oldest-first until the tracker's own estimate brings it back under (`reclaim-start
   * { cause: 'heap' }`). Default on; `false` turns it off; 0 < mark < 1.
   */
  heapGuard?:
    | boolean
    | {
        /** The mark, as a fraction of the usable heap: 0 < mark < 1, default 0.8. */
        mark?: number;
      };
  /**
   * While pressure is high, data older than this many ms is reclaimed (`cause: 'stale'`), so a
   * producer gated on `pressure$` never deadlocks behind a stuck consumer: an account stuck when
   * pressure turns high is reclaimed within `staleAfter` + one tick (`staleAfter / 5`, at most
   * 1 s). Default 5000; `Infinity` turns it off. The timer runs only while pressure is high and
   * never keeps the process alive.
   */
  staleAfter?: number;
}

/** A snapshot of a tracker's use, as emitted by `usage$`. */
export interface Usage {
  /** Bytes claimed by live participants. */
  readonly used: number;
  /** The current `max`. */
  readonly max: number;
  /** The current `lowWater`. */
  readonly lowWater: number;
  /** `used / max` (0 when tracking is disabled). */
  readonly pressure: number;
  /** Whether a reclamation is scheduled or running. */
  readonly reclaiming: boolean;
}

/** Counters since the tracker was created, read through `tracker.stats`. */
export interface TrackerStats {
  /** Reclamation runs started. */
  readonly reclaimRuns: number;
  /** Victim accounts chosen. */
  readonly victims: number;
  /** Bytes freed while reclaiming (claims released by reclaimed participants). */
  readonly bytesReclaimed: number;
  /** Accounts torn down by reclamation. */
  readonly accountsCollapsed: number;
  /** `participant-error` events. */
  readonly participantErrors: number;
  /** Runs started by the heap guard (cause `'heap'`). */
  readonly heapGuardRuns: number;
  /** Runs started by the staleness guard (cause `'stale'`). */
  readonly staleRuns: number;
  /** Accounts currently open. */
  readonly accounts: number;
  /** Participants currently registered. */
  readonly participants: number;
}

/** What went wrong in a `participant-error` event. */
export type ParticipantFault =
  /** `getOldest()` threw: the participant was torn down. */
  | 'getOldest-threw'
  /** `reclaim()` threw or its promise rejected: counted as collapsed. */
  | 'reclaim-threw'
  /** `reclaim()` answered something other than `'collapsing'` / `'partial'`: counted as collapsed. */
  | 'reclaim-invalid-answer'
  /** It said it holds no data while the books say it holds more than the slop. */
  | 'no-data-but-claimed'
  /** It released more than it had claimed; the release was clamped. */
  | 'over-release'
  /** It was garbage-collected without being closed; its memory was released. */
  | 'garbage-collected'
  /** `reclaim()` did not answer within `reclaimTimeout`: counted as collapsed. */
  | 'reclaim-timeout'
  /**
   * `getOldest()` returned something other than a timestamp or `undefined` (NaN, e.g. from a
   * clock that returns NaN): its data counts as the oldest, so reclamation is never silently
   * disabled.
   */
  | 'invalid-age';

/** Why a reclamation run started (see the `reclaim-start` event). */
export type ReclaimCause = 'quota' | 'heap' | 'stale';

/** An event of the tracker's life, as emitted by `events$`. */
export type MemquotaEvent =
  | {
      /** A reclamation run starts. */
      readonly type: 'reclaim-start';
      /**
       * Why: `'quota'`, `used` passed `max`; `'heap'`, the heap guard saw the live heap near
       * its limit; `'stale'`, data stayed stuck too long while pressure was high.
       */
      readonly cause: ReclaimCause;
      /** `tracker.used` at the start. */
      readonly used: number;
      /** `tracker.max` at the start. */
      readonly max: number;
      /** The mark the run reclaims down to. */
      readonly lowWater: number;
    }
  | {
      /** An account was chosen; it and its descendants are asked to reclaim. */
      readonly type: 'victim';
      /** The victim account's id. */
      readonly account: number;
      /** The victim account's name, present only when it was given one. */
      readonly name?: string;
      /** Its oldest data timestamp (`-Infinity` for a faulty participant), or `undefined` under `'largest'`. */
      readonly oldest: number | undefined;
      /** Bytes its own participants held when chosen. */
      readonly bytes: number;
      /** How many accounts (victim and descendants) were asked to reclaim. */
      readonly accounts: number;
    }
  | {
      /** An account was torn down (by reclamation, close or shutdown). */
      readonly type: 'collapse';
      /** The account's id. */
      readonly account: number;
      /** The account's name, present only when it was given one. */
      readonly name?: string;
      /** Why it was torn down. */
      readonly reason: CollapseReason;
      /** Bytes released by the tear-down. */
      readonly released: number;
    }
  | {
      /** A reclamation run ended. */
      readonly type: 'reclaim-end';
      /** `tracker.used` at the end. */
      readonly used: number;
      /** Victims chosen in this run. */
      readonly victims: number;
      /** Why the run stopped. */
      readonly outcome: 'low-water' | 'no-candidate' | 'shutdown';
      /** How long the run took, from its start to its end, on the tracker's clock (ms). */
      readonly durationMs: number;
    }
  | {
      /** A participant misbehaved; the tracker dealt with it and the books stay right. */
      readonly type: 'participant-error';
      /** The id of the participant's account. */
      readonly account: number;
      /** The account's name, present only when it was given one. */
      readonly name?: string;
      /** What went wrong. */
      readonly fault: ParticipantFault;
      /** The thrown value, where there was one. */
      readonly error?: unknown;
    };
