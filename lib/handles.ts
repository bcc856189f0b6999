/**
 * The handles: `Account` (reference-counted, keeps the account open), `WeakAccount`, and
 * `Participation` (a participant's handle for claim and release).
 *
 * Handles point at records of the books and reach the books only through the narrow
 * {@link Ledger} interface on the record; the books never import the handles. A handle that
 * is garbage-collected without `close()` counts as closed (`FinalizationRegistry`).
 *
 * ## Error kinds (as tor-memquota: the account is looked up before the participant)
 * - the tracker shut down: `TrackerShutdown`; corrupted: `TrackerCorrupted`;
 * - the account was closed, reclaimed or torn down: `AccountClosed`, also for a claim through
 *   a participation (or a clone of one) of that account;
 * - the account is open but this participant was torn down (destroyed, reclaimed alone,
 *   collected) or this handle closed: `ParticipantShutdown`.
 *
 * ## Brand
 * `isAccount(x)` checks the registered symbol `Symbol.for('rxjs-memquota.account')`, not
 * `instanceof`: two copies of the package in one process (the ESM and the CJS build) accept
 * each other's `Account` handles. An account stays bound to its own tracker: a copy's
 * operators use it (they reach the books through the account's own record), while linking it
 * to an account of another tracker is refused as always.
 *
 * @module
 */
import { Observable } from 'rxjs';
import { MemoryReclaimedError, MemquotaError } from './errors.js';
import { disposeSymbol } from './dispose.js';
import { accountGone, addHandle, invalidBytes, unwatchCollapse, watchCollapse, type AccountRecord, type CollapseListener, type ParticipantRecord } from './books.js';
import type { MemoryQuotaTracker } from './tracker.js';
import type { CollapseReason, Participant } from './types.js';

/** The brand of an `Account` handle: its record, shared by every copy of the package. */
export const ACCOUNT_BRAND: unique symbol = Symbol.for('rxjs-memquota.account') as never;

/** Whether `value` is an `Account` handle of rxjs-memquota (any copy of the package). */
export function isAccount(value: unknown): value is Account {
  return value !== null && typeof value === 'object' && ACCOUNT_BRAND in value;
}

/**
 * The record behind an account argument, with a clear TypeError for anything else.
 *
 * @throws MemquotaError `AccountClosed` for a closed handle.
 */
export function recordOfAccount(value: unknown, what: string): AccountRecord {
  if (!isAccount(value)) {
    throw new TypeError(`${what} must be an Account of rxjs-memquota, got ${value === null ? 'null' : typeof value}`);
  }
  return (value as unknown as { [ACCOUNT_BRAND]: AccountRecord })[ACCOUNT_BRAND];
}

const accountHandles = /* @__PURE__ */ new FinalizationRegistry<AccountRecord>((rec) => rec.ledger.dropAccountHandle(rec));
const participationHandles = /* @__PURE__ */ new FinalizationRegistry<ParticipantRecord>((rec) => rec.account.ledger.dropParticipantHandle(rec));

function handleClosed(): MemquotaError {
  return new MemquotaError('AccountClosed', 'this Account handle was closed');
}

function isParticipant(value: unknown): value is Participant {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Participant).getOldest === 'function' &&
    typeof (value as Participant).reclaim === 'function'
  );
}

/** Stand-in participant while `registerParticipantWith` constructs the real one. */
class ConstructionStandIn implements Participant {
  getOldest(): undefined {
    return undefined;
  }
  reclaim(): 'collapsing' {
    return 'collapsing';
  }
}

/**
 * A handle onto an account: the unit of reclamation.
 *
 * All memory claimed by the account's participants is treated alike; reclaiming the account
 * reclaims all its descendants too. Handles are reference-counted: `clone()` adds one,
 * `close()` drops one, and closing the last tears the account down and releases everything
 * its participants claimed. A handle that is garbage-collected without `close()` counts as
 * closed. Parent/child links keep nothing alive.
 *
 * ## Example
 * ```ts
 * import { MemoryQuotaTracker } from 'rxjs-memquota';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 64 << 20 });
 * using server = tracker.newAccount();
 * const connection = server.newChild();
 * connection.collapsed$.subscribe((why) => console.log('connection dropped:', why));
 * ```
 */
export class Account implements Disposable {
  private rec: AccountRecord | null;

  /** @internal Use `tracker.newAccount()`, `account.newChild()` or `account.clone()`. */
  constructor(rec: AccountRecord) {
    this.rec = rec;
    accountHandles.register(this, rec, this);
  }

  /** @internal The brand (see the module doc): the record, or `AccountClosed` once closed. */
  get [ACCOUNT_BRAND](): AccountRecord {
    return this.record();
  }

  /** A number naming the account in events and error messages (unique within its tracker). */
  get id(): number {
    return this.record().id;
  }

  /** The tracker this account belongs to. */
  get tracker(): MemoryQuotaTracker {
    return this.record().ledger.owner as MemoryQuotaTracker;
  }

  /** Whether this handle is closed or its account was torn down. */
  get closed(): boolean {
    return this.rec === null || this.rec.state !== 'open';
  }

  /** The record behind this handle; throws `AccountClosed` once the handle is closed. */
  private record(): AccountRecord {
    if (this.rec === null) throw handleClosed();
    return this.rec;
  }

  private open(): AccountRecord {
    const rec = this.record();
    rec.ledger.checkUsable();
    if (rec.state !== 'open') throw accountGone(rec);
    return rec;
  }

  /**
   * Opens a child account: reclaiming this account reclaims the child too, never the other
   * way round. The child is independent otherwise: closing this account does not close it.
   *
   * @param options `name`: carried on events and metrics.
   * @throws MemquotaError `AccountClosed` / `TrackerShutdown`.
   */
  newChild(options?: { readonly name?: string }): Account {
    const rec = this.open();
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError(`newChild options must be an object, got ${options === null ? 'null' : typeof options}`);
    }
    const name = options?.name;
    if (name !== undefined && typeof name !== 'string') throw new TypeError(`name must be a string, got ${typeof name}`);
    return new Account(rec.ledger.openAccount(rec, name));
  }

  /** The name given when the account was opened, or `undefined`. */
  get name(): string | undefined {
    return this.record().name;
  }

  /**
   * Bytes claimed by this account's own participants now (children not included); 0 once the
   * account is torn down.
   */
  get used(): number {
    const rec = this.record();
    return rec.state === 'open' ? rec.used : 0;
  }

  /**
   * An `AbortSignal` aborted when the account is torn down (reclaimed, closed, tracker shut
   * down), with a `MemoryReclaimedError` as its `reason`: pass it to your own awaits
   * (`events.once(socket, 'drain', { signal })`, `fetch`, timers) so they end with the
   * account. Already aborted if the account is gone. One signal per account, made on first use.
   */
  get signal(): AbortSignal {
    return signalOf(this.record());
  }

  /**
   * Adds `parent` as one more parent of this account.
   *
   * @throws TypeError if `parent` is not an account of the same tracker, or is this account
   *   or one of its descendants (a cycle).
   * @throws MemquotaError `ChildAccountAlreadyExists` if it is a parent already;
   *   `AccountClosed` / `TrackerShutdown`.
   */
  addParent(parent: Account): void {
    const rec = this.open();
    const parentRec = recordOfAccount(parent, 'parent');
    if (parentRec.ledger !== rec.ledger) {
      throw new TypeError(`parent belongs to ${parentRec.ledger.tracking ? 'another' : 'a no-op'} tracker; accounts can only be linked within one tracker`);
    }
    if (parentRec.state !== 'open') throw accountGone(parentRec);
    if (rec.hasParent(parentRec)) {
      throw new MemquotaError('ChildAccountAlreadyExists', `account ${parentRec.id} is already a parent of account ${rec.id}`);
    }
    if (isSelfOrDescendant(parentRec, rec)) {
      throw new TypeError(`account ${parentRec.id} cannot be a parent of account ${rec.id}: it is ${parentRec === rec ? 'the same account' : 'a descendant'}, which would make a cycle`);
    }
    rec.ledger.link(rec, parentRec);
  }

  /**
   * Registers a participant that will claim memory in this account.
   *
   * The tracker holds `participant` weakly: keep it alive yourself (it usually holds the
   * returned participation).
   *
   * @throws TypeError if `participant` lacks `getOldest` or `reclaim`.
   * @throws MemquotaError `AccountClosed` / `TrackerShutdown`.
   */
  registerParticipant(participant: Participant): Participation {
    return new Participation(registerRecord(this.record(), participant));
  }


  /**
   * Registers a participant built by `make`, which receives its participation first and may
   * claim inside the constructor. If reclamation reaches the participant while `make` runs,
   * or `make` throws, whatever it claimed is released and registration fails.
   *
   * @throws MemquotaError `ParticipantShutdown` if reclaimed during construction;
   *   `AccountClosed` / `TrackerShutdown`.
   * @throws whatever `make` throws, and TypeError if it returns no participant.
   */
  registerParticipantWith<P extends Participant>(make: (participation: Participation) => P): P {
    if (typeof make !== 'function') throw new TypeError('registerParticipantWith needs a function');
    const rec = this.open();
    const ledger = rec.ledger;
    const p = ledger.addParticipant(rec, new ConstructionStandIn());
    const participation = new Participation(p);
    let participant: P;
    try {
      participant = make(participation);
    } catch (err) {
      ledger.teardownParticipant(p);
      throw err;
    }
    if (!p.live) {
      // Say what really happened: the tracker or the account went, or the participant alone.
      ledger.checkUsable();
      if (rec.state !== 'open') throw accountGone(rec);
      throw new MemquotaError('ParticipantShutdown', 'the participant was torn down (destroyed or reclaimed) while make() was constructing it');
    }
    if (!isParticipant(participant)) {
      ledger.teardownParticipant(p);
      throw new TypeError('registerParticipantWith: make() must return an object with getOldest() and reclaim()');
    }
    ledger.adopt(p, participant);
    return participant;
  }

  /**
   * A new handle onto the same account; the account stays open until every handle is closed.
   *
   * @throws MemquotaError `AccountClosed` / `TrackerShutdown`.
   */
  clone(): Account {
    const rec = this.open();
    addHandle(rec);
    return new Account(rec);
  }

  /**
   * Drops this handle. Closing the last handle tears the account down: all its participants'
   * memory is released and `collapsed$` emits `'closed'`. Closing twice is a no-op.
   */
  close(): void {
    const rec = this.rec;
    if (rec === null) return;
    this.rec = null;
    accountHandles.unregister(this);
    rec.ledger.dropAccountHandle(rec);
  }

  /** Same as `close()`, so that `using account = tracker.newAccount()` works. */
  [disposeSymbol](): void {
    this.close();
  }

  /** A handle that does not keep the account open. */
  downgrade(): WeakAccount {
    return new WeakAccount(this.record());
  }

  /**
   * Emits the reason once when the account is torn down, then completes. Subscribing after
   * the tear-down emits the reason at once. Subscribers may call back into the tracker.
   */
  get collapsed$(): Observable<CollapseReason> {
    return collapsedOf(this.record());
  }
}

/**
 * A handle onto an account that does not keep it open. `upgrade()` gives a real `Account`
 * handle while the account is open.
 */
export class WeakAccount {
  /** @internal */
  constructor(private readonly rec: AccountRecord) {}

  /** The account's id. */
  get id(): number {
    return this.rec.id;
  }

  /** Whether the account was torn down. */
  get closed(): boolean {
    return this.rec.state !== 'open';
  }

  /**
   * A new `Account` handle onto the account.
   *
   * @throws MemquotaError `AccountClosed` when the account is gone, `TrackerShutdown`.
   */
  upgrade(): Account {
    this.rec.ledger.checkUsable();
    if (this.rec.state !== 'open') throw accountGone(this.rec);
    addHandle(this.rec);
    return new Account(this.rec);
  }

  /** The account's `collapsed$`. */
  get collapsed$(): Observable<CollapseReason> {
    return collapsedOf(this.rec);
  }
}

/**
 * Registration without a handle: the operators' own participants claim on the record
 * (`claimOn`) and live exactly as long as it, which saves a handle and a finalizer
 * registration per stream.
 *
 * @throws TypeError for a non-participant; MemquotaError `AccountClosed` / `TrackerShutdown`.
 */
export function registerRecord(rec: AccountRecord, participant: Participant): ParticipantRecord {
  if (!isParticipant(participant)) throw new TypeError('participant must have getOldest() and reclaim() methods');
  rec.ledger.checkUsable();
  if (rec.state !== 'open') throw accountGone(rec);
  const p = rec.ledger.addParticipant(rec, participant);
  rec.ledger.adopt(p, participant);
  return p;
}

function isSelfOrDescendant(candidate: AccountRecord, root: AccountRecord): boolean {
  const stack = [root];
  const seen = new Set<AccountRecord>();
  while (stack.length > 0) {
    const acc = stack.pop()!;
    if (acc === candidate) return true;
    if (seen.has(acc)) continue;
    seen.add(acc);
    for (const child of acc.children) stack.push(child);
  }
  return false;
}

function collapsedOf(rec: AccountRecord): Observable<CollapseReason> {
  return new Observable<CollapseReason>((subscriber) => {
    if (rec.state !== 'open') {
      subscriber.next(rec.state);
      subscriber.complete();
      return undefined;
    }
    const listener: CollapseListener = {
      accountCollapsed(reason) {
        // An earlier listener of the same collapse (or this one's own next) may have
        // unsubscribed it: a closed subscriber gets nothing more.
        if (subscriber.closed) return;
        subscriber.next(reason);
        if (!subscriber.closed) subscriber.complete();
      },
    };
    watchCollapse(rec, listener);
    return () => unwatchCollapse(rec, listener);
  });
}

/** Each account's `signal`, made on first use (few accounts have one: not a field of every record). */
const signals = /* @__PURE__ */ new WeakMap<AccountRecord, AbortController>();

function signalOf(rec: AccountRecord): AbortSignal {
  const made = signals.get(rec);
  if (made !== undefined) return made.signal;
  const controller = new AbortController();
  signals.set(rec, controller);
  if (rec.state !== 'open') controller.abort(new MemoryReclaimedError(rec.state));
  else watchCollapse(rec, { accountCollapsed: (reason) => controller.abort(new MemoryReclaimedError(reason)) });
  return controller.signal;
}

/**
 * A participant's handle for `claim` and `release`.
 *
 * Reference-counted like `Account`: `clone()` adds a handle, `close()` drops one, and closing
 * the last tears the participant down (everything it claimed is released). A participation
 * does not keep its account open. Once its account is torn down (closed, reclaimed),
 * `claim` throws `AccountClosed`; once the participant alone is torn down (`destroy()`,
 * collected) or this handle closed, `ParticipantShutdown`. `release` never throws except
 * `RangeError` for an invalid count.
 */
export class Participation implements Disposable {
  private rec: ParticipantRecord | null;

  /** @internal Use `account.registerParticipant()`. */
  constructor(rec: ParticipantRecord) {
    this.rec = rec;
    participationHandles.register(this, rec, this);
  }

  /**
   * Records that the participant now holds `bytes` more.
   *
   * Never refused for being over quota: passing `max` schedules reclamation instead.
   *
   * @throws RangeError if `bytes` is negative, NaN, fractional, infinite or above
   *   `Number.MAX_SAFE_INTEGER` (nothing changes).
   * @throws MemquotaError `AccountClosed` if its account was closed or reclaimed;
   *   `ParticipantShutdown` if the participant alone was torn down or this handle closed;
   *   `TrackerShutdown`, `TrackerCorrupted`.
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
   * @throws MemquotaError `AccountClosed` if its account is gone; `ParticipantShutdown` if
   *   the participant was torn down or this handle closed.
   */
  clone(): Participation {
    const rec = this.rec;
    if (rec === null || !rec.live) throw participantGone(this.rec);
    addHandle(rec);
    return new Participation(rec);
  }

  /** Drops this handle; the last one tears the participant down. Idempotent. */
  close(): void {
    const rec = this.rec;
    if (rec === null) return;
    this.rec = null;
    participationHandles.unregister(this);
    rec.account.ledger.dropParticipantHandle(rec);
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
    rec.account.ledger.teardownParticipant(rec);
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
  claimCounted(rec, bytes);
}

/**
 * @internal A claim of a count already checked (the operators check their cost answers once,
 * with the same rule): the liveness check and the transaction, without checking it again.
 */
export function claimCounted(rec: ParticipantRecord | null, bytes: number): void {
  if (rec === null || !rec.live) throw participantGone(rec);
  rec.account.ledger.claim(rec, bytes);
}

/** @internal A release on a participant's record; a no-op once it is gone. */
export function releaseOn(rec: ParticipantRecord | null, bytes: number): void {
  if (!(Number.isSafeInteger(bytes) && bytes >= 0)) throw invalidBytes('release', bytes);
  releaseCounted(rec, bytes);
}

/** @internal A release of a count already checked (see {@link claimCounted}). */
export function releaseCounted(rec: ParticipantRecord | null, bytes: number): void {
  if (rec === null || !rec.live) return;
  rec.account.ledger.release(rec, bytes);
}

/** The error for using a participant that is gone (`null`: the handle was closed). */
function participantGone(rec: ParticipantRecord | null): MemquotaError {
  if (rec === null) return new MemquotaError('ParticipantShutdown', 'this Participation handle was closed');
  // The account first, as tor-memquota: a participant of a closed account gets AccountClosed.
  rec.account.ledger.checkUsable();
  if (rec.account.state !== 'open') return accountGone(rec.account);
  return new MemquotaError('ParticipantShutdown', 'the participant is gone: it was torn down (destroyed, reclaimed or collected) while its account is open');
}
