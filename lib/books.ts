/**
 * The books: one record per account and per participant, the total, and the only
 * transactions that change quantities.
 *
 * ## Invariant (on the fields)
 * ```text
 * Σ participant.used  over an account's live participants  = account.used
 * Σ account.used      over open accounts                     = total.used
 * ```
 * A torn-down record holds 0 bytes and no links, and is out of the books.
 *
 * ## Transactions
 * Quantities are `#private` fields: outside this module they can only be read. Every change
 * of the books goes through one function, {@link Books} `#book(p, delta)`, called by the four
 * transactions: **claim**, **release**, **participant tear-down**, **account tear-down**
 * (claim and release inline its three additions by hand: they are the hot path).
 * `tracker.audit()` recomputes the invariant from the records.
 *
 * ## The total and its wake-up
 * {@link Total} keeps `used` and two alarms: a transaction that moves the total above the
 * upper alarm or to/below the lower one reports it (`true`), and only then does the books'
 * owner look at pressure, usage and reclamation. In the common case a claim costs three
 * additions and two compares.
 *
 * ## Reentrancy
 * The books call out ({@link BooksHooks}, `accountCollapsed` listeners) only once the
 * transaction is complete and the invariant holds again: a callback may call any transaction.
 *
 * This module imports no handle and no tracker: handles reach the books through the
 * {@link Ledger} interface, the tracker through {@link Books}.
 *
 * @module
 * Internal: not part of the public API. (Not tagged as such: with `stripInternal`, a tag in
 * the file's first comment strips its first import from the declarations.)
 */
import { MemquotaError } from './errors.js';
import type { CollapseReason, Participant, ParticipantFault } from './types.js';

/**
 * Told once when an account is torn down, after the books are settled: a `collapsed$`
 * subscriber, or a participant that has `accountCollapsed` (told through its weak reference).
 */
export interface CollapseListener {
  accountCollapsed(reason: CollapseReason): void;
}

/**
 * What few accounts have, kept beside the records rather than as a field of each (an idle
 * stream's account stays small, B5): names, and listeners told once at tear-down
 * (`collapsed$` subscribers, `signal`).
 */
const names = new WeakMap<AccountRecord, string>();
const collapseListeners = new WeakMap<AccountRecord, Set<CollapseListener>>();

/**
 * Live handles of a record (`Account` handles of an account record, `Participation` handles
 * of a participant record) beyond the first, for the few records that have more than one
 * (`clone()`, `upgrade()`); a record's last handle, dropped, tears it down.
 */
const extraHandles = new WeakMap<AccountRecord | ParticipantRecord, number>();

/** One more handle onto `rec`. */
export function addHandle(rec: AccountRecord | ParticipantRecord): void {
  extraHandles.set(rec, (extraHandles.get(rec) ?? 0) + 1);
}

/** Drops one handle of `rec` beyond the first; false when only the last one was left. */
function dropExtraHandle(rec: AccountRecord | ParticipantRecord): boolean {
  const extra = extraHandles.get(rec);
  if (extra === undefined) return false;
  if (extra === 1) extraHandles.delete(rec);
  else extraHandles.set(rec, extra - 1);
  return true;
}

/** Listens to `acc`'s tear-down (once); the caller checks that it is open. */
export function watchCollapse(acc: AccountRecord, listener: CollapseListener): void {
  let set = collapseListeners.get(acc);
  if (set === undefined) collapseListeners.set(acc, (set = new Set()));
  set.add(listener);
}

/** Stops listening to `acc`'s tear-down. */
export function unwatchCollapse(acc: AccountRecord, listener: CollapseListener): void {
  collapseListeners.get(acc)?.delete(listener);
}

/** The links of an account that has none: most accounts, so they share one empty set. */
const NO_LINKS: ReadonlySet<AccountRecord> = new Set();

// The only writers of the quantities; module-private, set in the classes' static blocks.
let moveParticipant: (p: ParticipantRecord, delta: number) => void;
let moveAccount: (a: AccountRecord, delta: number) => void;

/** The books of one account. */
export class AccountRecord {
  #used = 0;
  /** `'open'`, or torn down for the reason given. */
  state: 'open' | CollapseReason = 'open';
  /**
   * The parent account, or a set of them when there are several (rare), `null` for none:
   * most accounts are children of one account, and a `Set` each would be ~130 bytes of an
   * idle stream's account (B5). Changes only through `link` and the account's tear-down.
   */
  parentLinks: AccountRecord | Set<AccountRecord> | null = null;
  /** Child accounts; change only through `link` / `unlink`. */
  children: ReadonlySet<AccountRecord> = NO_LINKS;
  /**
   * The account's own participants, a list threaded through their records, in joining order;
   * the first's `prev` is the last (no field for the last: an idle stream's account is small).
   */
  firstParticipant: ParticipantRecord | null = null;

  constructor(
    /** The books this account is in, as the handles see them. */
    readonly ledger: Ledger,
    readonly id: number,
    name: string | undefined,
  ) {
    if (name !== undefined) names.set(this, name);
  }

  /** The name given at creation, carried on events; `undefined` when none was given. */
  get name(): string | undefined {
    return names.get(this);
  }

  /** The account's only participant, or `null` when it has none or several. */
  get soleParticipant(): ParticipantRecord | null {
    const first = this.firstParticipant;
    return first !== null && first.next === null ? first : null;
  }

  /** Number of the account's own participants (walks the list). */
  get participantCount(): number {
    let n = 0;
    for (let p = this.firstParticipant; p !== null; p = p.next) n++;
    return n;
  }

  /** Bytes claimed by this account's own participants. */
  get used(): number {
    return this.#used;
  }

  /** Parent accounts, as a set (a new one when there is a single parent: not for hot paths). */
  get parents(): ReadonlySet<AccountRecord> {
    const links = this.parentLinks;
    return links === null ? NO_LINKS : links instanceof Set ? links : new Set([links]);
  }

  /** Whether `parent` is one of this account's parents. */
  hasParent(parent: AccountRecord): boolean {
    const links = this.parentLinks;
    return links === parent || (links instanceof Set && links.has(parent));
  }

  static {
    moveAccount = (a, delta) => {
      a.#used += delta;
    };
  }
}

/** The books of one participant. */
export class ParticipantRecord {
  #used = 0;
  /**
   * The participant, held weakly; while `registerParticipantWith` constructs it, a stand-in
   * held strongly; `null` once torn down.
   */
  target: WeakRef<Participant> | Participant | null = null;
  /** Neighbours in the account's participant list (the first's `prev` is the last). */
  prev: ParticipantRecord | null = null;
  next: ParticipantRecord | null = null;

  constructor(readonly account: AccountRecord) {}

  /** Bytes this participant has claimed and not released. */
  get used(): number {
    return this.#used;
  }

  /** False once torn down; every handle is then dead. */
  get live(): boolean {
    return this.target !== null;
  }

  /** The participant object, or `undefined` if it was torn down or garbage-collected. */
  participant(): Participant | undefined {
    const target = this.target;
    if (target === null) return undefined;
    return target instanceof WeakRef ? target.deref() : target;
  }

  static {
    moveParticipant = (p, delta) => {
      p.#used += delta;
    };
  }
}

/**
 * The total used and its wake-up signal, in one small type: `claim` and `release` are the only
 * ways to move it, and each says whether the new total needs a look (an alarm was passed).
 */
export class Total {
  #used = 0;
  /** Above this, a change needs a look. */
  #above: number;
  /** At or below this, a change needs a look. */
  #atOrBelow = -1;

  constructor(above: number) {
    this.#above = above;
  }

  get used(): number {
    return this.#used;
  }

  /** Adds `bytes`; true when the total is now above the upper alarm (or at/below the lower). */
  claim(bytes: number): boolean {
    const used = (this.#used += bytes);
    return used > this.#above || used <= this.#atOrBelow;
  }

  /** Takes `bytes` off; true when the total is now at/below the lower alarm (or above the upper). */
  release(bytes: number): boolean {
    const used = (this.#used -= bytes);
    return used <= this.#atOrBelow || used > this.#above;
  }

  /** Sets the alarms (`-Infinity` / `Infinity` to wake on every change). */
  setAlarms(above: number, atOrBelow: number): void {
    this.#above = above;
    this.#atOrBelow = atOrBelow;
  }
}

/** What the books tell their owner, always once a transaction is complete. */
export interface BooksHooks {
  /** The total passed an alarm; `delta` is the change. */
  changed(delta: number): void;
  /** A participant misbehaved (the books are already right). */
  participantError(p: ParticipantRecord, fault: ParticipantFault, error?: unknown): void;
  /** A participant started holding data, or joined: maybe a candidate a run lacks. */
  candidateAppeared(acc: AccountRecord): void;
  /** An account was torn down and its participants are out of the books. */
  collapsed(acc: AccountRecord, reason: CollapseReason, released: number): void;
  /**
   * Bytes `acc` held when reclamation asked it to reclaim, while the answer is pending;
   * `undefined` when it is not being asked.
   */
  heldWhenAsked(acc: AccountRecord): number | undefined;
  /**
   * `acc` became a descendant of an account whose reclaim answers are pending (a child opened
   * or a parent added meanwhile): it is reclaimed with it.
   */
  joinedVictim(acc: AccountRecord): void;
}

/** What the handles know of the books: nothing else. */
export interface Ledger {
  /** The tracker facade that owns these books (for `account.tracker`). */
  readonly owner: object;
  /** Whether the books count anything (false for a no-op tracker). */
  readonly tracking: boolean;
  /** Throws unless the tracker accepts work (`TrackerShutdown`, `TrackerCorrupted`). */
  checkUsable(): void;
  /** A new open account, linked under `parent` when given (checked by the caller). */
  openAccount(parent: AccountRecord | undefined, name: string | undefined): AccountRecord;
  /** Makes `parent` one more parent of `child`. */
  link(child: AccountRecord, parent: AccountRecord): void;
  /** A new live participant record in `acc` answering for `participant` (held strongly until `adopt`). */
  addParticipant(acc: AccountRecord, participant: Participant): ParticipantRecord;
  /** The record answers for `participant` from now on, holding it weakly. */
  adopt(p: ParticipantRecord, participant: Participant): void;
  claim(p: ParticipantRecord, bytes: number): void;
  release(p: ParticipantRecord, bytes: number): void;
  teardownParticipant(p: ParticipantRecord): void;
  /** One `Account` handle fewer; the last tears the account down. */
  dropAccountHandle(acc: AccountRecord): void;
  /** One `Participation` handle fewer; the last tears the participant down. */
  dropParticipantHandle(p: ParticipantRecord): void;
}

type BooksState = 'running' | 'shutdown' | 'corrupted';

/** The books of one tracker. */
export class Books implements Ledger {
  readonly total: Total;
  #state: BooksState = 'running';
  /** `tracking && state === 'running'`: the one flag the hot path reads. */
  #counting: boolean;
  #corruption: unknown = undefined;
  #nextAccountId = 1;
  /** Open accounts, in opening order. */
  readonly accounts = new Set<AccountRecord>();
  #participants = 0;
  /**
   * Counts releases. Data ages only grow, and only through a release (or a tear-down, which
   * takes the account out): while this is unchanged, ages read earlier are still true.
   */
  releases = 0;
  /** Set by reclamation while a run is running or stalled: tell it of new data. */
  watchNewData = false;
  #hooks: BooksHooks;
  /** Notices participants that were garbage-collected. */
  readonly #collected = new FinalizationRegistry<ParticipantRecord>((p) => {
    if (p.live) {
      this.teardownParticipant(p);
      this.#hooks.participantError(p, 'garbage-collected');
    }
  });

  constructor(
    readonly owner: object,
    readonly tracking: boolean,
    hooks: BooksHooks,
    alarm: number,
  ) {
    this.#counting = tracking;
    this.#hooks = hooks;
    this.total = new Total(alarm);
  }

  get used(): number {
    return this.total.used;
  }

  get participants(): number {
    return this.#participants;
  }

  get state(): BooksState {
    return this.#state;
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  checkUsable(): void {
    if (this.#state === 'running') return;
    if (this.#state === 'shutdown') throw new MemquotaError('TrackerShutdown', 'the memory quota tracker was shut down');
    const cause = this.#corruption === undefined ? '' : ` (${String(this.#corruption)})`;
    throw new MemquotaError('TrackerCorrupted', `the memory quota tracker found its books inconsistent and refuses all work${cause}`);
  }

  /** Stops all work: shut down (handles fail with `TrackerShutdown`) or corrupted. */
  stop(state: 'shutdown' | 'corrupted', corruption?: unknown): void {
    if (this.#state !== 'running') return;
    this.#state = state;
    this.#counting = false;
    this.#corruption = corruption;
  }

  openAccount(parent: AccountRecord | undefined, name: string | undefined): AccountRecord {
    this.checkUsable();
    if (parent !== undefined) this.#checkParent(parent);
    const acc = new AccountRecord(this, this.#nextAccountId++, name);
    this.accounts.add(acc);
    if (parent !== undefined) this.link(acc, parent);
    return acc;
  }

  link(child: AccountRecord, parent: AccountRecord): void {
    this.#checkParent(parent);
    const links = child.parentLinks;
    if (links === null) child.parentLinks = parent;
    else if (links instanceof Set) links.add(parent);
    else child.parentLinks = new Set([links, parent]);
    if (parent.children === NO_LINKS) parent.children = new Set();
    (parent.children as Set<AccountRecord>).add(child);
    // A child of an account whose reclaim answers are pending joins that reclamation.
    if (this.#hooks.heldWhenAsked(parent) !== undefined) this.#hooks.joinedVictim(child);
  }

  /** A parent must be open. */
  #checkParent(parent: AccountRecord): void {
    if (parent.state !== 'open') throw accountGone(parent);
  }

  addParticipant(acc: AccountRecord, participant: Participant): ParticipantRecord {
    this.checkUsable();
    if (acc.state !== 'open') throw accountGone(acc);
    const p = new ParticipantRecord(acc);
    p.target = participant;
    const first = acc.firstParticipant;
    if (first === null) {
      acc.firstParticipant = p;
      p.prev = p;
    } else {
      const last = first.prev!;
      last.next = p;
      p.prev = last;
      first.prev = p;
    }
    this.#participants++;
    this.#hooks.candidateAppeared(acc);
    return p;
  }

  adopt(p: ParticipantRecord, participant: Participant): void {
    p.target = new WeakRef(participant);
    // No unregister at tear-down (a hash lookup each): a late callback finds the record dead.
    this.#collected.register(participant, p);
    // What it claimed while being constructed was held by a stand-in with no data age: a run
    // then found no candidate. Now it has one: look again.
    if (p.used !== 0 && this.#state === 'running') {
      this.#hooks.candidateAppeared(p.account);
      this.#hooks.changed(0);
    }
  }

  // ---------------------------------------------------------------------------------------
  // The transactions

  /** Claim: a live participant adds `bytes` (validated by the caller). */
  claim(p: ParticipantRecord, bytes: number): void {
    if (!this.#counting) {
      this.checkUsable();
      return; // a no-op tracker accepts every claim and counts nothing
    }
    if (this.total.used + bytes > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`claim(${bytes}) would take the tracker's total past Number.MAX_SAFE_INTEGER`);
    }
    // Internal bookkeeping of reclamation (no user code): before the claim's consequences.
    if (this.watchNewData && p.used === 0 && bytes > 0) this.#hooks.candidateAppeared(p.account);
    // #book(p, bytes), inlined by hand for the hot path: the same three additions.
    moveParticipant(p, bytes);
    moveAccount(p.account, bytes);
    if (this.total.claim(bytes) && this.#state === 'running') this.#hooks.changed(bytes);
  }

  /** Release: a participant gives back `bytes` (validated), clamped to what it holds. */
  release(p: ParticipantRecord, bytes: number): void {
    if (!this.#counting) return;
    this.releases++;
    const held = p.used;
    if (bytes > held) {
      if (held !== 0) this.#book(p, -held);
      // Reported once the release is booked: a subscriber that claims now is kept.
      this.#hooks.participantError(p, 'over-release', new RangeError(`release(${bytes}) but only ${held} bytes are claimed`));
      return;
    }
    if (bytes === 0) return;
    // #book(p, -bytes), inlined by hand for the hot path (a clamped release cannot go below 0).
    moveParticipant(p, -bytes);
    moveAccount(p.account, -bytes);
    if (this.total.release(bytes) && this.#state === 'running') this.#hooks.changed(-bytes);
  }

  /** Participant tear-down: it leaves the books and everything it held is released. */
  teardownParticipant(p: ParticipantRecord): void {
    const released = this.#unlinkParticipant(p);
    if (released !== 0) this.#book(p, -released, true);
    if (released !== 0 && this.#state === 'running') this.#hooks.changed(-released);
  }

  /**
   * Account tear-down, one transaction: every participant goes, then the links; the books
   * are whole before anyone hears of it (`collapse` event, `collapsed$`, `accountCollapsed`).
   */
  teardownAccount(acc: AccountRecord, reason: CollapseReason): void {
    if (acc.state !== 'open') return;
    const held = this.#hooks.heldWhenAsked(acc);
    if (held !== undefined && reason === 'closed') reason = 'reclaimed';
    acc.state = reason;
    // What the participants released while answering counts as released by this tear-down.
    let released = held === undefined ? 0 : Math.max(0, held - acc.used);
    // Participants to tell: the first in a field (most accounts have one), the rest in a list.
    let toldFirst: CollapseListener | null = null;
    let told: CollapseListener[] | null = null;
    let freed = 0;
    for (let p = acc.firstParticipant; p !== null; p = acc.firstParticipant) {
      const participant = p.participant();
      if (typeof participant?.accountCollapsed === 'function') {
        if (toldFirst === null) toldFirst = participant as CollapseListener;
        else (told ??= []).push(participant as CollapseListener);
      }
      const bytes = this.#unlinkParticipant(p);
      if (bytes !== 0) this.#book(p, -bytes, true);
      freed += bytes;
    }
    released += freed;
    const parents = acc.parentLinks;
    if (parents !== null) {
      if (parents instanceof Set) for (const parent of parents) (parent.children as Set<AccountRecord>).delete(acc);
      else (parents.children as Set<AccountRecord>).delete(acc);
      acc.parentLinks = null;
    }
    if (acc.children.size !== 0) {
      for (const child of acc.children) unlinkParent(child, acc);
      acc.children = NO_LINKS;
    }
    this.accounts.delete(acc);
    if (freed !== 0 && this.#state === 'running') this.#hooks.changed(-freed);
    this.#hooks.collapsed(acc, reason, released);
    const listeners = collapseListeners.get(acc);
    if (listeners !== undefined) collapseListeners.delete(acc);
    if (listeners) for (const listener of listeners) listener.accountCollapsed(reason);
    if (toldFirst !== null) toldFirst.accountCollapsed(reason);
    if (told) for (const participant of told) participant.accountCollapsed(reason);
  }

  dropAccountHandle(acc: AccountRecord): void {
    if (!dropExtraHandle(acc) && acc.state === 'open') this.teardownAccount(acc, 'closed');
  }

  dropParticipantHandle(p: ParticipantRecord): void {
    if (!dropExtraHandle(p)) this.teardownParticipant(p);
  }

  /** Takes `p` out of its account's list; returns what it held (still booked). */
  #unlinkParticipant(p: ParticipantRecord): number {
    if (p.target === null) return 0;
    p.target = null; // what makes it dead
    const acc = p.account;
    // The list is linear forward and circular backward (the first's `prev` is the last).
    const first = acc.firstParticipant!;
    if (p === first) {
      acc.firstParticipant = p.next;
      if (p.next !== null) p.next.prev = p.prev;
    } else {
      p.prev!.next = p.next;
      (p.next ?? first).prev = p.prev;
    }
    p.prev = p.next = null;
    this.#participants--;
    return p.used;
  }

  /**
   * The one function that changes the books. `quiet`: a tear-down, which tells the owner once
   * at its end.
   */
  #book(p: ParticipantRecord, delta: number, quiet = false): void {
    moveParticipant(p, delta);
    moveAccount(p.account, delta);
    const wake = delta > 0 ? this.total.claim(delta) : this.total.release(-delta);
    if (delta < 0 && (p.used < 0 || p.account.used < 0 || this.total.used < 0)) {
      this.stop('corrupted', new Error(`a release of ${-delta} bytes took the books below 0`));
      return;
    }
    if (wake && !quiet && this.#state === 'running') this.#hooks.changed(delta);
  }
}

/** Takes `parent` out of `child`'s parents. */
function unlinkParent(child: AccountRecord, parent: AccountRecord): void {
  const links = child.parentLinks;
  if (links === parent) child.parentLinks = null;
  else if (links instanceof Set) links.delete(parent);
}

/** The account's participants as an array: for loops that call participant code. */
export function participantsOf(acc: AccountRecord): ParticipantRecord[] {
  const list: ParticipantRecord[] = [];
  for (let p = acc.firstParticipant; p !== null; p = p.next) list.push(p);
  return list;
}

/** The error for using an account that was torn down. */
export function accountGone(acc: AccountRecord): MemquotaError {
  if (acc.state === 'tracker-shutdown') return new MemquotaError('TrackerShutdown', 'the memory quota tracker was shut down');
  const how = acc.state === 'reclaimed' ? 'was reclaimed (torn down to free memory)' : 'was closed';
  return new MemquotaError('AccountClosed', `account ${accountLabel(acc)} ${how}`);
}

/** An account as messages name it: its id, and its name when it has one (`3 "conn-7"`). */
export function accountLabel(acc: AccountRecord): string {
  return acc.name === undefined ? String(acc.id) : `${acc.id} ${JSON.stringify(acc.name)}`;
}

function describeBytes(bytes: unknown): string {
  return typeof bytes === 'number' ? String(bytes) : `${typeof bytes} ${String(bytes)}`;
}

/** The RangeError for a bad byte count, shared by claim and release. */
export function invalidBytes(op: 'claim' | 'release', bytes: unknown): RangeError {
  return new RangeError(
    `${op}(${describeBytes(bytes)}): the byte count must be a non-negative safe integer (0 ≤ n ≤ ${Number.MAX_SAFE_INTEGER})`,
  );
}
