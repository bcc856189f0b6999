/**
 * Account handles: `Account` (reference-counted, keeps the account open) and `WeakAccount`.
 *
 * @module
 */
import { Observable } from 'rxjs';
import { MemoryReclaimedError, MemquotaError } from './errors.js';
import { disposeSymbol } from './dispose.js';
import { Participation } from './participation.js';
import { accountGone, linkAccounts, type AccountRecord, type CollapseListener, type ParticipantRecord } from './records.js';
import type { MemoryQuotaTracker } from './tracker.js';
import type { CollapseReason, Participant } from './types.js';

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
    rec.tracker._accountFinalizer.register(this, rec, this);
  }

  /** A number naming the account in events and error messages (unique within its tracker). */
  get id(): number {
    return this._record().id;
  }

  /** The tracker this account belongs to. */
  get tracker(): MemoryQuotaTracker {
    return this._record().tracker;
  }

  /** Whether this handle is closed or its account was torn down. */
  get closed(): boolean {
    return this.rec === null || this.rec.state !== 'open';
  }

  /** @internal The record behind this handle; throws `AccountClosed` once the handle is closed. */
  _record(): AccountRecord {
    if (this.rec === null) throw handleClosed();
    return this.rec;
  }

  private open(): AccountRecord {
    const rec = this._record();
    rec.tracker._checkUsable();
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
    return rec.tracker.newAccount({ parent: this, name: options?.name });
  }

  /** The name given when the account was opened, or `undefined`. */
  get name(): string | undefined {
    return this._record().name;
  }

  /**
   * Bytes claimed by this account's own participants now (children not included); 0 once the
   * account is torn down.
   */
  get used(): number {
    const rec = this._record();
    return rec.state === 'open' ? rec.used : 0;
  }

  /**
   * An `AbortSignal` aborted when the account is torn down (reclaimed, closed, tracker shut
   * down), with a `MemoryReclaimedError` as its `reason`: pass it to your own awaits
   * (`events.once(socket, 'drain', { signal })`, `fetch`, timers) so they end with the
   * account. Already aborted if the account is gone. One signal per account, made on first use.
   */
  get signal(): AbortSignal {
    return signalOf(this._record());
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
    const parentRec = rec.tracker._accountRecordOf(parent, 'parent');
    if (parentRec.state !== 'open') throw accountGone(parentRec);
    if (rec.parents.has(parentRec)) {
      throw new MemquotaError('ChildAccountAlreadyExists', `account ${parentRec.id} is already a parent of account ${rec.id}`);
    }
    if (isSelfOrDescendant(parentRec, rec)) {
      throw new TypeError(`account ${parentRec.id} cannot be a parent of account ${rec.id}: it is ${parentRec === rec ? 'the same account' : 'a descendant'}, which would make a cycle`);
    }
    linkAccounts(rec, parentRec);
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
    return new Participation(this._registerRecord(participant));
  }

  /**
   * @internal Registration without a handle: the operators' own participants claim on the
   * record (`claimOn`) and live exactly as long as it, which saves a handle and a finalizer
   * registration per stream.
   */
  _registerRecord(participant: Participant): ParticipantRecord {
    if (!isParticipant(participant)) throw new TypeError('participant must have getOldest() and reclaim() methods');
    const rec = this.open();
    const p = rec.tracker._addParticipant(rec);
    adopt(p, participant);
    return p;
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
    const tracker = rec.tracker;
    const p = tracker._addParticipant(rec);
    p.target = new ConstructionStandIn();
    const participation = new Participation(p);
    let participant: P;
    try {
      participant = make(participation);
    } catch (err) {
      tracker._teardownParticipant(p);
      throw err;
    }
    if (!p.live) {
      throw new MemquotaError('ParticipantShutdown', 'the participant was reclaimed while it was being constructed');
    }
    if (!isParticipant(participant)) {
      tracker._teardownParticipant(p);
      throw new TypeError('registerParticipantWith: make() must return an object with getOldest() and reclaim()');
    }
    adopt(p, participant);
    return participant;
  }

  /**
   * A new handle onto the same account; the account stays open until every handle is closed.
   *
   * @throws MemquotaError `AccountClosed` / `TrackerShutdown`.
   */
  clone(): Account {
    const rec = this.open();
    rec.handles++;
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
    rec.tracker._accountFinalizer.unregister(this);
    rec.tracker._dropAccountHandle(rec);
  }

  /** Same as `close()`, so that `using account = tracker.newAccount()` works. */
  [disposeSymbol](): void {
    this.close();
  }

  /** A handle that does not keep the account open. */
  downgrade(): WeakAccount {
    return new WeakAccount(this._record());
  }

  /**
   * Emits the reason once when the account is torn down, then completes. Subscribing after
   * the tear-down emits the reason at once. Subscribers may call back into the tracker.
   */
  get collapsed$(): Observable<CollapseReason> {
    return collapsedOf(this._record());
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
    this.rec.tracker._checkUsable();
    if (this.rec.state !== 'open') throw accountGone(this.rec);
    this.rec.handles++;
    return new Account(this.rec);
  }

  /** The account's `collapsed$`. */
  get collapsed$(): Observable<CollapseReason> {
    return collapsedOf(this.rec);
  }
}

/** The record answers for `participant` from now on, holding it weakly. */
function adopt(p: ParticipantRecord, participant: Participant): void {
  p.target = new WeakRef(participant);
  p.tracker._participantFinalizer.register(participant, p);
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

function watchCollapse(rec: AccountRecord, listener: CollapseListener): boolean {
  if (rec.state !== 'open') return false;
  (rec.collapseListeners ??= new Set()).add(listener);
  return true;
}

function unwatchCollapse(rec: AccountRecord, listener: CollapseListener): void {
  rec.collapseListeners?.delete(listener);
}

function signalOf(rec: AccountRecord): AbortSignal {
  if (rec.abort !== null) return rec.abort.signal;
  const controller = (rec.abort = new AbortController());
  if (rec.state !== 'open') controller.abort(new MemoryReclaimedError(rec.state));
  else watchCollapse(rec, { accountCollapsed: (reason) => controller.abort(new MemoryReclaimedError(reason)) });
  return controller.signal;
}
