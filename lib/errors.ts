/**
 * The closed set of errors the library throws or emits.
 *
 * Every error is a class with its own `name`; `MemquotaError` also carries a stable `kind`
 * so that callers can switch on it without parsing messages.
 *
 * @module
 */

/**
 * The stable kinds of {@link MemquotaError}.
 *
 * - `TrackerShutdown`: the tracker was shut down; its handles are dead.
 * - `AccountClosed`: the account was closed (last handle) or torn down by reclamation; also a
 *   `claim` through a participation of such an account (the account is looked up first).
 * - `ChildAccountAlreadyExists`: `addParent` named a parent the account already has.
 * - `ParticipantShutdown`: the account is open, but the participation was closed, or its
 *   participant was torn down alone (destroyed, garbage-collected).
 * - `TrackerCorrupted`: the tracker found its own books inconsistent and refuses all work.
 * - `Bug`: an internal error that should never happen; please report it.
 */
export type MemquotaErrorKind =
  | 'TrackerShutdown'
  | 'AccountClosed'
  | 'ChildAccountAlreadyExists'
  | 'ParticipantShutdown'
  | 'TrackerCorrupted'
  | 'Bug';

/**
 * An operation on the quota system could not be done.
 *
 * Thrown by `claim`, `newAccount`, `newChild`, `addParent`, `registerParticipant`,
 * `clone` and `upgrade`. Never thrown by `release`.
 */
export class MemquotaError extends Error {
  /** The stable kind; see {@link MemquotaErrorKind}. */
  readonly kind: MemquotaErrorKind;

  /**
   * @param kind The stable kind of the failure.
   * @param message What the caller did, or what happened, in one sentence.
   */
  constructor(kind: MemquotaErrorKind, message: string) {
    super(message);
    this.name = 'MemquotaError';
    this.kind = kind;
  }
}

/**
 * What a stream torn down by the quota system emits to its subscriber.
 *
 * A `memquota`, `memquotaMap` or `memquotaQueue` stream whose account was reclaimed
 * (or closed, or whose tracker shut down) errors with this. `reason` says which.
 *
 * It carries no stack trace (`stack` is just `name: message`): it is built once per victim
 * stream, reclamation can take down many thousands of streams in one run, and capturing a
 * stack was a third of that run's time; the frames (the tracker's reclamation loop) would not
 * say anything about the stream anyway.
 */
export class MemoryReclaimedError extends Error {
  /** Why the stream's memory was taken away. */
  readonly reason: 'reclaimed' | 'closed' | 'tracker-shutdown';

  /**
   * @param reason Why the stream's memory was taken away.
   * @param message Defaults to a sentence naming the reason.
   */
  constructor(reason: 'reclaimed' | 'closed' | 'tracker-shutdown' = 'reclaimed', message?: string) {
    // No stack capture (see above). Where `Error.stackTraceLimit` does not exist (Firefox,
    // Safari) setting it is harmless, and a frozen `Error` keeps its own value.
    const limit = Error.stackTraceLimit;
    try {
      Error.stackTraceLimit = 0;
    } catch {
      // frozen: keep the stack
    }
    try {
      super(message ?? defaultReclaimedMessage(reason));
    } finally {
      try {
        Error.stackTraceLimit = limit;
      } catch {
        // frozen
      }
    }
    this.name = 'MemoryReclaimedError';
    this.reason = reason;
  }
}

function defaultReclaimedMessage(reason: 'reclaimed' | 'closed' | 'tracker-shutdown'): string {
  switch (reason) {
    case 'reclaimed':
      return 'memory quota exceeded: this stream held the oldest data and was reclaimed';
    case 'closed':
      return 'the memory quota account of this stream was closed';
    case 'tracker-shutdown':
      return 'the memory quota tracker of this stream was shut down';
  }
}

/**
 * A tracker configuration is invalid or inconsistent.
 *
 * The message names the fields and the problem, e.g.
 * `lowWater (2000) must not exceed 98 % of max (1000)`.
 */
export class ConfigError extends Error {
  /** The configuration fields involved. */
  readonly fields: readonly string[];

  /**
   * @param fields The configuration fields involved.
   * @param message What is wrong with them.
   */
  constructor(fields: readonly string[], message: string) {
    super(message);
    this.name = 'ConfigError';
    this.fields = fields;
  }
}
