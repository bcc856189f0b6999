/**
 * The tracker's books: one record per account and per participant.
 *
 * Handles (`Account`, `Participation`, `WeakAccount`) point at these records; the records
 * never point back at handles, so a forgotten handle can be garbage-collected and
 * finalized. Quantities (`used`) change only through the tracker's transactions.
 *
 * Invariants (checked by `tracker.audit()`):
 * - `Σ participant.used` over an account's participants `= account.used`
 * - `Σ account.used` over open accounts `= tracker.used`
 * - a record in the books is live (`participant.live`, `account.state === 'open'`), and a
 *   torn-down record holds 0 bytes and no links.
 *
 * @module
 */
import { MemquotaError } from './errors.js';
import type { CollapseReason, Participant } from './types.js';
import type { MemoryQuotaTracker } from './tracker.js';

/**
 * Something told once when an account is torn down: a `collapsed$` subscriber, or a
 * participant that has this method (the operators' queues), told through its weak reference.
 */
export interface CollapseListener {
  accountCollapsed(reason: CollapseReason): void;
}

/** The links of an account that has none: most accounts, so they share one empty set. */
const NO_LINKS: ReadonlySet<AccountRecord> = new Set();

/** Makes `parent` a parent of `child`. */
export function linkAccounts(child: AccountRecord, parent: AccountRecord): void {
  if (child.parents === NO_LINKS) child.parents = new Set();
  if (parent.children === NO_LINKS) parent.children = new Set();
  (child.parents as Set<AccountRecord>).add(parent);
  (parent.children as Set<AccountRecord>).add(child);
}

/** Removes every link of `rec`, both ways. */
export function unlinkAccount(rec: AccountRecord): void {
  for (const parent of rec.parents) (parent.children as Set<AccountRecord>).delete(rec);
  for (const child of rec.children) (child.parents as Set<AccountRecord>).delete(rec);
  rec.parents = NO_LINKS;
  rec.children = NO_LINKS;
}

/** The books of one account. */
export class AccountRecord {
  /** Live `Account` handles; at 0 the account is torn down. */
  handles = 1;
  /** Bytes claimed by this account's own participants. */
  used = 0;
  /** True while reclamation waits for this account's participants to answer. */
  reclaiming = false;
  /** While `reclaiming`: bytes held when asked, and whether a participant answered 'partial'. */
  heldWhenAsked = 0;
  answeredPartial = false;
  /** `'open'`, or torn down for the reason given. */
  state: 'open' | CollapseReason = 'open';
  /** Parent accounts; change only through `linkAccounts` / `unlinkAccount`. */
  parents: ReadonlySet<AccountRecord> = NO_LINKS;
  /** Child accounts; change only through `linkAccounts` / `unlinkAccount`. */
  children: ReadonlySet<AccountRecord> = NO_LINKS;
  readonly participants = new Set<ParticipantRecord>();
  /** Told once when the account is torn down (`collapsed$` subscribers, queue operators). */
  collapseListeners: Set<CollapseListener> | null = null;

  constructor(
    readonly tracker: MemoryQuotaTracker,
    readonly id: number,
  ) {}
}

/** The books of one participant. */
export class ParticipantRecord {
  /** Live `Participation` handles; at 0 the participant is torn down. */
  handles = 1;
  /** Bytes this participant has claimed and not released. */
  used = 0;
  /** False once torn down; every handle is then dead. */
  live = true;
  /** The participant, held weakly; `null` while a stand-in answers for it. */
  target: WeakRef<Participant> | null = null;
  /** The stand-in used while `registerParticipantWith` constructs the participant. */
  standIn: Participant | null = null;

  /** The account's tracker, one load away for `claim` and `release`. */
  readonly tracker: MemoryQuotaTracker;

  constructor(readonly account: AccountRecord) {
    this.tracker = account.tracker;
  }

  /** The participant object, or `undefined` if it was garbage-collected. */
  participant(): Participant | undefined {
    return this.standIn ?? this.target?.deref();
  }
}

/** The error for using an account that was torn down. */
export function accountGone(rec: AccountRecord): MemquotaError {
  if (rec.state === 'tracker-shutdown') return new MemquotaError('TrackerShutdown', 'the memory quota tracker was shut down');
  const how = rec.state === 'reclaimed' ? 'was reclaimed (torn down to free memory)' : 'was closed';
  return new MemquotaError('AccountClosed', `account ${rec.id} ${how}`);
}
