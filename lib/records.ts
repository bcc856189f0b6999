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
  /**
   * The account's own participants, a list threaded through their records (no Set entry per
   * participant): change only through `joinAccount` / `leaveAccount`.
   */
  firstParticipant: ParticipantRecord | null = null;
  lastParticipant: ParticipantRecord | null = null;
  participantCount = 0;
  /** Told once when the account is torn down (`collapsed$` subscribers, queue operators). */
  collapseListeners: Set<CollapseListener> | null = null;

  /** The account's `signal`, made on first use and aborted at tear-down. */
  abort: AbortController | null = null;

  constructor(
    readonly tracker: MemoryQuotaTracker,
    readonly id: number,
    /** The name given at creation, carried on events; `undefined` when none was given. */
    readonly name: string | undefined,
  ) {}
}

/** The books of one participant. */
export class ParticipantRecord {
  /** Live `Participation` handles; at 0 the participant is torn down. */
  handles = 1;
  /** Bytes this participant has claimed and not released. */
  used = 0;
  /**
   * The participant, held weakly; while `registerParticipantWith` constructs it, a stand-in
   * held strongly; `null` once torn down (set right after the record is made).
   */
  target: WeakRef<Participant> | Participant | null = null;
  /** Neighbours in the account's participant list (see `AccountRecord.firstParticipant`). */
  prev: ParticipantRecord | null = null;
  next: ParticipantRecord | null = null;

  constructor(readonly account: AccountRecord) {}

  /** False once torn down; every handle is then dead. */
  get live(): boolean {
    return this.target !== null;
  }

  /** The account's tracker. */
  get tracker(): MemoryQuotaTracker {
    return this.account.tracker;
  }

  /** The participant object, or `undefined` if it was garbage-collected. */
  participant(): Participant | undefined {
    const target = this.target;
    if (target === null) return undefined;
    return target instanceof WeakRef ? target.deref() : target;
  }
}

/** Appends a participant to its account's list. */
export function joinAccount(acc: AccountRecord, p: ParticipantRecord): void {
  p.prev = acc.lastParticipant;
  if (acc.lastParticipant !== null) acc.lastParticipant.next = p;
  else acc.firstParticipant = p;
  acc.lastParticipant = p;
  acc.participantCount++;
}

/** Takes a participant out of its account's list. */
export function leaveAccount(acc: AccountRecord, p: ParticipantRecord): void {
  if (p.prev !== null) p.prev.next = p.next;
  else acc.firstParticipant = p.next;
  if (p.next !== null) p.next.prev = p.prev;
  else acc.lastParticipant = p.prev;
  p.prev = p.next = null;
  acc.participantCount--;
}

/**
 * The account's participants as an array: for loops that call participant code, which may
 * register or tear down participants of the same account meanwhile.
 */
export function participantsOf(acc: AccountRecord): ParticipantRecord[] {
  const list: ParticipantRecord[] = [];
  for (let p = acc.firstParticipant; p !== null; p = p.next) list.push(p);
  return list;
}

/** The error for using an account that was torn down. */
export function accountGone(rec: AccountRecord): MemquotaError {
  if (rec.state === 'tracker-shutdown') return new MemquotaError('TrackerShutdown', 'the memory quota tracker was shut down');
  const how = rec.state === 'reclaimed' ? 'was reclaimed (torn down to free memory)' : 'was closed';
  return new MemquotaError('AccountClosed', `account ${accountLabel(rec)} ${how}`);
}

/** An account as messages name it: its id, and its name when it has one (`3 "conn-7"`). */
export function accountLabel(rec: AccountRecord): string {
  return rec.name === undefined ? String(rec.id) : `${rec.id} ${JSON.stringify(rec.name)}`;
}
