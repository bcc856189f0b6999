/**
 * Random operation sequences against a tracker with a small quota (fast-check).
 *
 * A small model keeps what the spec itself knows: the account graph it built, which handles it
 * closed, what each participant was told to do and answered. After every step the books must
 * balance (`expectBooks`), every participant the model knows to be gone must be dead and every
 * one it knows to be alive must be usable, `collapsed$` must agree with `closed`, reclaimed
 * accounts must be victims or their descendants, and pressure must respect its hysteresis band.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { asapScheduler, queueScheduler } from 'rxjs';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import type { Account, WeakAccount, Participation } from '../lib/handles.js';
import { ConfigError, MemquotaError } from '../lib/errors.js';
import type { CollapseReason, MemquotaConfig, MemquotaEvent, ParticipantFault, Reclaimed, Usage, VictimPolicy } from '../lib/types.js';
import { FakeClock, TestParticipant, expectBooks, turns } from './helpers/books.js';

type OldestMode = 'normal' | 'throw' | 'no-data';
type ReclaimMode = 'collapse' | 'partial' | 'throw' | 'reject' | 'async-collapse' | 'async-partial' | 'invalid' | 'never' | 'hostile-then' | 'revoked';
/** Signals a reentrant subscriber listens to, and what it does once when told something. */
type Signal = 'events' | 'usage' | 'pressure' | 'collapsed';
type ReentrantAction = 'claim' | 'release' | 'releaseAll' | 'closeAccount' | 'newAccount' | 'closeParticipation';

const OLDEST_MODES: readonly OldestMode[] = ['normal', 'normal', 'normal', 'normal', 'throw', 'no-data'];
const RECLAIM_MODES: readonly ReclaimMode[] = [
  'collapse',
  'collapse',
  'collapse',
  'partial',
  'throw',
  'reject',
  'async-collapse',
  'async-partial',
  'invalid',
  'never',
  'hostile-then',
  'revoked',
];
/** Modes in which a participant answers and frees what it holds (for `used ≤ max` after settling). */
const ANSWERING: ReadonlySet<ReclaimMode> = new Set(['collapse', 'async-collapse']);
/** The reclaim deadline of the property trackers (ms): never-answering participants are cut off. */
const RECLAIM_TIMEOUT = 50;

const BAD_CONFIGS: readonly MemquotaConfig[] = [
  { max: 0 },
  { max: 1000, lowWater: 990 },
  { max: 1000, lowWater: 600, softMax: 500 },
  { max: 1000, softMax: 2000 },
  { lowWater: 100 },
  { max: 1.5 },
  { max: 1000, lowWater: NaN },
];
const BAD_COUNTS: readonly number[] = [-1, 0.5, NaN, Infinity, 2 ** 53];

type Op =
  | { kind: 'newAccount' }
  | { kind: 'newChild'; h: number }
  | { kind: 'addParent'; h: number; parent: number }
  | { kind: 'cloneAccount'; h: number }
  | { kind: 'upgrade'; a: number }
  | { kind: 'closeAccount'; h: number }
  | { kind: 'register'; h: number; oldestMode: OldestMode; reclaimMode: ReclaimMode; viaWith: boolean; initial: number }
  | { kind: 'claim'; p: number; bytes: number }
  | { kind: 'claimBad'; p: number; bad: number }
  | { kind: 'release'; p: number; bytes: number }
  | { kind: 'cloneParticipation'; p: number }
  | { kind: 'closeParticipation'; p: number; which: number }
  | { kind: 'destroy'; p: number }
  | { kind: 'setOldestMode'; p: number; mode: OldestMode }
  | { kind: 'setReclaimMode'; p: number; mode: ReclaimMode }
  | { kind: 'advance'; ms: number }
  | { kind: 'reconfigure'; max: number; lowPercent: number | null; softPercent: number | null }
  | { kind: 'reconfigureBad'; which: number }
  | { kind: 'tick' }
  | { kind: 'settle' }
  | { kind: 'reentrant'; signal: Signal; action: ReentrantAction; target: number; bytes: number };

interface Setup {
  /** Accounts opened, and participants registered round-robin in them, before the first step. */
  accounts: number;
  participants: { oldestMode: OldestMode; reclaimMode: ReclaimMode }[];
  max: number;
  lowPercent: number | null;
  scheduler: 'asap' | 'queue';
  victimPolicy: VictimPolicy;
  watchUsage: boolean;
}

const idx = fc.nat({ max: 1000 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'newAccount' as const }) },
  { weight: 3, arbitrary: idx.map((h) => ({ kind: 'newChild' as const, h })) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('addParent' as const), h: idx, parent: idx }) },
  { weight: 1, arbitrary: idx.map((h) => ({ kind: 'cloneAccount' as const, h })) },
  { weight: 1, arbitrary: idx.map((a) => ({ kind: 'upgrade' as const, a })) },
  { weight: 2, arbitrary: idx.map((h) => ({ kind: 'closeAccount' as const, h })) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('register' as const),
      h: idx,
      oldestMode: fc.constantFrom(...OLDEST_MODES),
      reclaimMode: fc.constantFrom(...RECLAIM_MODES),
      viaWith: fc.boolean(),
      initial: fc.nat({ max: 3000 }),
    }),
  },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('claim' as const), p: idx, bytes: fc.nat({ max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('claimBad' as const), p: idx, bad: fc.constantFrom(...BAD_COUNTS) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('release' as const), p: idx, bytes: fc.nat({ max: 3500 }) }) },
  { weight: 1, arbitrary: idx.map((p) => ({ kind: 'cloneParticipation' as const, p })) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('closeParticipation' as const), p: idx, which: idx }) },
  { weight: 1, arbitrary: idx.map((p) => ({ kind: 'destroy' as const, p })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setOldestMode' as const), p: idx, mode: fc.constantFrom(...OLDEST_MODES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setReclaimMode' as const), p: idx, mode: fc.constantFrom(...RECLAIM_MODES) }) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 2000 }).map((ms) => ({ kind: 'advance' as const, ms })) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('reconfigure' as const),
      max: fc.integer({ min: 500, max: 20_000 }),
      lowPercent: fc.option(fc.integer({ min: 10, max: 98 })),
      softPercent: fc.option(fc.integer({ min: 0, max: 100 })),
    }),
  },
  { weight: 1, arbitrary: fc.nat({ max: BAD_CONFIGS.length - 1 }).map((which) => ({ kind: 'reconfigureBad' as const, which })) },
  { weight: 4, arbitrary: fc.constant({ kind: 'tick' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'settle' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('reentrant' as const),
      signal: fc.constantFrom<Signal>('events', 'usage', 'pressure', 'collapsed'),
      action: fc.constantFrom<ReentrantAction>('claim', 'claim', 'release', 'releaseAll', 'releaseAll', 'closeAccount', 'newAccount', 'closeParticipation'),
      target: idx,
      bytes: fc.nat({ max: 3000 }),
    }),
  },
);

const setupArb: fc.Arbitrary<Setup> = fc.record({
  accounts: fc.integer({ min: 1, max: 5 }),
  participants: fc.array(fc.record({ oldestMode: fc.constantFrom(...OLDEST_MODES), reclaimMode: fc.constantFrom(...RECLAIM_MODES) }), {
    minLength: 1,
    maxLength: 8,
  }),
  max: fc.integer({ min: 2000, max: 20_000 }),
  lowPercent: fc.option(fc.integer({ min: 10, max: 98 })),
  scheduler: fc.constantFrom('asap' as const, 'queue' as const),
  victimPolicy: fc.constantFrom('oldest' as const, 'largest' as const),
  watchUsage: fc.boolean(),
});

interface ModelAccount {
  readonly id: number;
  readonly weak: WeakAccount;
  readonly handles: AccountHandle[];
  reason: CollapseReason | undefined;
  readonly parents: Set<ModelAccount>;
  readonly children: Set<ModelAccount>;
}

interface AccountHandle {
  readonly account: ModelAccount;
  readonly handle: Account;
  closedByTest: boolean;
}

interface ModelParticipant {
  readonly tp: PropParticipant;
  readonly account: ModelAccount;
  readonly handles: { handle: Participation; closedByTest: boolean }[];
}

/** A participant told by the spec how to behave, and remembering what it did. */
class PropParticipant extends TestParticipant {
  /** Definitely torn down by the tracker, as far as this participant can tell. */
  gone = false;
  /** An asynchronous answer is outstanding (until the next `settled()`). */
  pending = false;
  /** One of the outstanding answers will tear it down. */
  goneAtSettle = false;
  model: ModelParticipant | null = null;
  /**
   * It said "no data" while holding bytes, then started telling an age without claiming:
   * against the participant contract (an age may only appear with a claim), so a tracker that
   * stalled on its "no data" need not see it (until the next claim from zero or release).
   */
  ageAppearedSilently = false;

  constructor(
    public oldestMode: OldestMode,
    public reclaimMode: ReclaimMode,
    private readonly world: World,
  ) {
    super();
    this.onGetOldest = (self) => this.answerOldest(self);
    this.onReclaim = (self) => this.answerReclaim(self);
  }

  private answerOldest(self: TestParticipant): number | undefined {
    this.world.expectAsked(this, 'getOldest');
    switch (this.oldestMode) {
      case 'throw':
        this.gone = true;
        this.world.faultsExpected.getOldest++;
        throw new Error('getOldest fault');
      case 'no-data':
        return undefined;
      case 'normal':
        return self.held > 0 ? self.oldest : undefined;
    }
  }

  private answerReclaim(self: TestParticipant): Reclaimed | PromiseLike<Reclaimed> {
    this.world.expectAsked(this, 'reclaim');
    const later = <T>(settle: (resolve: (v: T) => void, reject: (e: unknown) => void) => void): Promise<T> =>
      new Promise<T>((resolve, reject) => setImmediate(() => settle(resolve, reject)));
    switch (this.reclaimMode) {
      case 'collapse':
        self.collapse();
        this.gone = true;
        return 'collapsing';
      case 'partial':
        self.release(Math.floor(self.held / 2));
        self.oldest = this.world.clock.now();
        return 'partial';
      case 'throw':
        this.gone = true;
        this.world.faultsExpected.reclaimThrew++;
        throw new Error('reclaim fault');
      case 'invalid':
        this.gone = true;
        this.world.faultsExpected.invalid++;
        return 'nope' as unknown as Reclaimed;
      case 'reject':
        this.world.faultsExpected.asyncAnswers++;
        this.pending = true;
        this.goneAtSettle = true;
        this.world.faultsExpected.reclaimThrew++;
        return later<Reclaimed>((_, reject) => reject(new Error('reclaim rejected')));
      case 'async-collapse':
        this.world.faultsExpected.asyncAnswers++;
        self.release(self.held);
        this.pending = true;
        this.goneAtSettle = true;
        return later<Reclaimed>((resolve) => resolve('collapsing'));
      case 'async-partial':
        this.world.faultsExpected.asyncAnswers++;
        self.release(Math.floor(self.held / 2));
        self.oldest = this.world.clock.now();
        this.pending = true;
        return later<Reclaimed>((resolve) => resolve('partial'));
      case 'never':
        // Never answers: the reclaim deadline counts it as collapsed.
        this.pending = true;
        this.goneAtSettle = true;
        this.world.faultsExpected.timeout++;
        return new Promise<Reclaimed>(() => {});
      case 'hostile-then':
        this.gone = true;
        this.world.faultsExpected.reclaimThrew++;
        return Object.defineProperty({}, 'then', {
          get: () => {
            throw new Error('hostile then getter');
          },
        }) as unknown as Reclaimed;
      case 'revoked': {
        this.gone = true;
        this.world.faultsExpected.reclaimThrew++;
        const { proxy, revoke } = Proxy.revocable({}, {});
        revoke();
        return proxy as unknown as Reclaimed;
      }
    }
  }
}

/** The spec's own view of the world, and the checks it runs after every step. */
class World {
  readonly clock = new FakeClock(1000);
  readonly tracker: MemoryQuotaTracker;
  readonly accounts: ModelAccount[] = [];
  readonly accountHandles: AccountHandle[] = [];
  readonly participants: ModelParticipant[] = [];
  readonly faults: Partial<Record<ParticipantFault, number>> = {};
  participantErrors = 0;
  lastReclaimEnd: Extract<MemquotaEvent, { type: 'reclaim-end' }> | undefined;
  readonly violations: string[] = [];
  readonly faultsExpected = { getOldest: 0, reclaimThrew: 0, invalid: 0, timeout: 0, asyncAnswers: 0 };
  /** What each reentrant `pressure$` subscriber saw: each must end on the current state. */
  readonly pressureWatchers: ('normal' | 'high')[][] = [];
  overRelease = { min: 0, max: 0 };
  pressure: ('normal' | 'high')[] = [];
  lastUsage: Usage | undefined;
  private runActive = false;
  private reclaimable = new Set<number>();

  constructor(setup: Setup) {
    const lowWater = setup.lowPercent === null ? 'auto' : Math.floor((setup.max * setup.lowPercent) / 100);
    this.tracker = MemoryQuotaTracker.create(
      { max: setup.max, lowWater },
      {
        now: this.clock.now,
        scheduler: setup.scheduler === 'queue' ? queueScheduler : asapScheduler,
        victimPolicy: setup.victimPolicy,
        reclaimTimeout: RECLAIM_TIMEOUT,
      },
    );
    this.tracker.events$.subscribe((e) => this.onEvent(e));
    this.tracker.pressure$.subscribe((level) => this.pressure.push(level));
    if (setup.watchUsage) this.tracker.usage$.subscribe((u) => (this.lastUsage = u));
  }

  private onEvent(e: MemquotaEvent): void {
    switch (e.type) {
      case 'reclaim-start':
        if (this.runActive) this.violations.push('reclaim-start inside a run');
        this.runActive = true;
        this.reclaimable = new Set();
        break;
      case 'reclaim-end':
        this.runActive = false;
        this.lastReclaimEnd = e;
        break;
      case 'victim': {
        const victim = this.accounts.find((a) => a.id === e.account);
        if (!victim || victim.reason !== undefined) {
          this.violations.push(`victim ${e.account} is not an open account`);
          break;
        }
        const targets = descendantsOf(victim);
        if (e.accounts !== targets.size) this.violations.push(`victim ${e.account}: ${e.accounts} accounts asked, the model has ${targets.size}`);
        for (const t of targets) this.reclaimable.add(t.id);
        break;
      }
      case 'collapse':
        if (e.reason === 'reclaimed' && !this.reclaimable.has(e.account)) {
          this.violations.push(`account ${e.account} reclaimed but it is no victim nor descendant of one in this run`);
        }
        if (e.reason === 'reclaimed' && !this.runActive) this.violations.push(`account ${e.account} reclaimed outside a run`);
        break;
      case 'participant-error':
        this.participantErrors++;
        this.faults[e.fault] = (this.faults[e.fault] ?? 0) + 1;
        break;
    }
  }

  isReclaimable(account: ModelAccount): boolean {
    return this.runActive && this.reclaimable.has(account.id);
  }

  markReclaimable(account: ModelAccount): void {
    this.reclaimable.add(account.id);
  }

  /** The tracker must not consult a participant the model knows to be gone. */
  expectAsked(p: PropParticipant, what: string): void {
    if (p.model && this.isGone(p.model)) this.violations.push(`${what}() called on a participant that is gone`);
  }

  isGone(mp: ModelParticipant): boolean {
    return mp.tp.gone || mp.account.reason !== undefined || mp.handles.every((h) => h.closedByTest);
  }

  addAccount(handle: Account, parent?: ModelAccount): ModelAccount {
    const account: ModelAccount = {
      id: handle.id,
      weak: handle.downgrade(),
      handles: [],
      reason: undefined,
      parents: new Set(),
      children: new Set(),
    };
    if (parent) link(parent, account);
    handle.collapsed$.subscribe((reason) => {
      if (account.reason !== undefined) this.violations.push(`account ${account.id} collapsed twice`);
      account.reason = reason;
      for (const p of account.parents) p.children.delete(account);
      for (const c of account.children) c.parents.delete(account);
      account.parents.clear();
      account.children.clear();
    });
    this.accounts.push(account);
    this.addHandle(account, handle);
    return account;
  }

  addHandle(account: ModelAccount, handle: Account): void {
    const h = { account, handle, closedByTest: false };
    account.handles.push(h);
    this.accountHandles.push(h);
  }

  /** Everything checked after every step. */
  check(): void {
    const { tracker } = this;
    expect(this.violations.join(' | '), 'violations').to.equal('');
    expectBooks(
      tracker,
      this.participants.map((p) => p.tp),
    );
    const report = tracker.audit();
    expect(report.accounts, 'open accounts').to.equal(this.accounts.filter((a) => a.reason === undefined).length);
    for (const a of this.accounts) {
      expect(a.weak.closed, `account ${a.id}: closed vs collapsed$`).to.equal(a.reason !== undefined);
      if (a.handles.every((h) => h.closedByTest)) expect(a.reason, `account ${a.id} lost its last handle`).not.to.equal(undefined);
    }
    for (const mp of this.participants) {
      const open = mp.handles.filter((h) => !h.closedByTest);
      if (this.isGone(mp)) {
        for (const h of mp.handles) expect(h.handle.closed, 'a gone participant has only dead handles').to.equal(true);
      } else if (!mp.tp.pending) {
        for (const h of open) expect(h.handle.closed, 'a live participant has usable handles').to.equal(false);
      }
      if (!mp.tp.participation.closed) expect(mp.tp.participation.claimed, 'claimed vs what the participant holds').to.equal(mp.tp.held);
    }
    const faults = this.faults;
    expect(faults['getOldest-threw'] ?? 0, 'getOldest-threw events').to.equal(this.faultsExpected.getOldest);
    expect(faults['reclaim-invalid-answer'] ?? 0, 'reclaim-invalid-answer events').to.equal(this.faultsExpected.invalid);
    expect(faults['reclaim-threw'] ?? 0, 'reclaim-threw events').to.be.at.most(this.faultsExpected.reclaimThrew);
    expect(faults['over-release'] ?? 0, 'over-release events').to.be.within(this.overRelease.min, this.overRelease.max);
    expect(faults['garbage-collected'] ?? 0, 'nothing was garbage-collected').to.equal(0);
    expect(tracker.stats.participantErrors).to.equal(this.participantErrors);
    // Pressure: edges alternate, high above softMax, normal at or below lowWater.
    this.pressure.forEach((level, i) => {
      if (i > 0) expect(level, 'pressure$ emits edges only').not.to.equal(this.pressure[i - 1]);
    });
    const level = this.pressure.at(-1);
    if (tracker.used > tracker.softMax) expect(level, `used ${tracker.used} > softMax ${tracker.softMax}`).to.equal('high');
    if (tracker.used <= tracker.lowWater) expect(level, `used ${tracker.used} <= lowWater ${tracker.lowWater}`).to.equal('normal');
    // Reentrant pressure$ subscribers (registered later, one of them changing the books while
    // told) see the edges in order and end on the current state like everyone else.
    for (const seen of this.pressureWatchers) {
      seen.forEach((l, i) => {
        if (i > 0) expect(l, 'a later pressure$ subscriber sees edges only').not.to.equal(seen[i - 1]);
      });
      expect(seen.at(-1), 'a later pressure$ subscriber ends on the current state').to.equal(level);
    }
    if (this.lastUsage !== undefined) {
      expect(this.lastUsage.used, 'the last usage$ snapshot').to.equal(tracker.used);
      expect([this.lastUsage.max, this.lastUsage.lowWater]).to.deep.equal([tracker.max, tracker.lowWater]);
    }
  }

  /** After `settled()`: every outstanding answer arrived. */
  async settle(): Promise<void> {
    await this.tracker.settled();
    for (const mp of this.participants) {
      if (mp.tp.goneAtSettle) mp.tp.gone = true;
      // An asynchronous answer races the (real-time) reclaim deadline: one that lost counts as
      // collapsed (a reclaim-timeout fault, checked below).
      if (mp.tp.pending && !mp.tp.gone && mp.handles.some((h) => !h.closedByTest) && mp.tp.participation.closed) mp.tp.gone = true;
      mp.tp.pending = false;
      mp.tp.goneAtSettle = false;
    }
    const threw = this.faults['reclaim-threw'] ?? 0;
    const timedOut = this.faults['reclaim-timeout'] ?? 0;
    const expected = this.faultsExpected;
    expect(threw, 'reclaim-threw events after settling').to.be.at.most(expected.reclaimThrew);
    expect(timedOut, 'reclaim-timeout events after settling').to.be.within(expected.timeout, expected.timeout + expected.asyncAnswers);
    expect(threw + timedOut, 'every failed answer is reported, as thrown or timed out').to.be.at.least(expected.reclaimThrew + expected.timeout);
    // Whenever every live participant answers and frees, reclamation gets under max.
    const live = this.participants.filter((mp) => !this.isGone(mp));
    if (live.every((mp) => ANSWERING.has(mp.tp.reclaimMode) && mp.tp.oldestMode === 'normal' && !mp.tp.ageAppearedSilently)) {
      expect(this.tracker.used, `every participant answers, yet settled at ${this.tracker.used} > max ${this.tracker.max}`).to.be.at.most(this.tracker.max);
    }
    if (this.tracker.used > this.tracker.max) {
      expect(this.lastReclaimEnd, `settled with used ${this.tracker.used} > max ${this.tracker.max}`).to.deep.include({ outcome: 'no-candidate' });
    }
    expect(this.runActive, 'settled while a run is going on').to.equal(false);
  }
}

function link(parent: ModelAccount, child: ModelAccount): void {
  parent.children.add(child);
  child.parents.add(parent);
  // Linked under an account of the current run's victims: reclaimed with it.
  if (currentWorld?.isReclaimable(parent)) for (const d of descendantsOf(child)) currentWorld.markReclaimable(d);
}

/** The world of the scenario running now (for `link`). */
let currentWorld: World | undefined;

function descendantsOf(root: ModelAccount): Set<ModelAccount> {
  const seen = new Set<ModelAccount>([root]);
  const stack = [root];
  while (stack.length > 0) {
    for (const child of stack.pop()!.children) {
      if (!seen.has(child)) {
        seen.add(child);
        stack.push(child);
      }
    }
  }
  return seen;
}

/** Runs `call` and checks it threw a MemquotaError of `kind`; returns whether it threw. */
function outcome(call: () => void): MemquotaError | TypeError | RangeError | undefined {
  try {
    call();
    return undefined;
  } catch (err) {
    if (err instanceof MemquotaError || err instanceof TypeError || err instanceof RangeError) return err;
    throw err;
  }
}

function expectKind(err: unknown, kind: string | readonly string[], what: string): void {
  expect(err, what).to.be.instanceOf(MemquotaError);
  if (typeof kind === 'string') expect((err as MemquotaError).kind, what).to.equal(kind);
  else expect(kind, what).to.include((err as MemquotaError).kind);
}

/**
 * The error kind for using a gone participant through its handle, as tor-memquota: the
 * account is looked up first (`AccountClosed` once it is gone), then the participant.
 */
function goneKind(mp: ModelParticipant): string {
  // The handle the participant claims through (tp.participation) was closed: no account to look up.
  if (mp.handles.find((h) => h.handle === mp.tp.participation)?.closedByTest !== false) return 'ParticipantShutdown';
  return mp.account.reason !== undefined ? 'AccountClosed' : 'ParticipantShutdown';
}

/** Either kind: while an answer is pending the spec cannot tell which will have happened. */
const EITHER_GONE = ['AccountClosed', 'ParticipantShutdown'] as const;

/** Applies one operation to the world, checking what the spec can predict. */
async function step(world: World, op: Op): Promise<void> {
  const { tracker } = world;
  const handleAt = (i: number): AccountHandle | undefined => world.accountHandles[i % Math.max(1, world.accountHandles.length)];
  const participantAt = (i: number): ModelParticipant | undefined => world.participants[i % Math.max(1, world.participants.length)];
  const handleDead = (h: AccountHandle): boolean => h.closedByTest || h.account.reason !== undefined;

  switch (op.kind) {
    case 'newAccount':
      world.addAccount(tracker.newAccount());
      return;
    case 'newChild': {
      const h = handleAt(op.h);
      if (!h) return;
      let child: Account | undefined;
      const err = outcome(() => (child = h.handle.newChild()));
      if (handleDead(h)) expectKind(err, 'AccountClosed', 'newChild on a dead handle');
      else {
        expect(err, 'newChild').to.equal(undefined);
        world.addAccount(child!, h.account);
      }
      return;
    }
    case 'addParent': {
      const h = handleAt(op.h);
      const p = handleAt(op.parent);
      if (!h || !p) return;
      const err = outcome(() => h.handle.addParent(p.handle));
      if (handleDead(h) || handleDead(p)) expectKind(err, 'AccountClosed', 'addParent with a dead handle');
      else if (h.account.parents.has(p.account)) expectKind(err, 'ChildAccountAlreadyExists', 'addParent twice');
      else if (descendantsOf(h.account).has(p.account)) expect(err, 'addParent making a cycle').to.be.instanceOf(TypeError);
      else {
        expect(err, 'addParent').to.equal(undefined);
        link(p.account, h.account);
      }
      return;
    }
    case 'cloneAccount': {
      const h = handleAt(op.h);
      if (!h) return;
      let clone: Account | undefined;
      const err = outcome(() => (clone = h.handle.clone()));
      if (handleDead(h)) expectKind(err, 'AccountClosed', 'clone of a dead handle');
      else {
        expect(err, 'clone').to.equal(undefined);
        world.addHandle(h.account, clone!);
      }
      return;
    }
    case 'upgrade': {
      const a = world.accounts[op.a % Math.max(1, world.accounts.length)];
      if (!a) return;
      let upgraded: Account | undefined;
      const err = outcome(() => (upgraded = a.weak.upgrade()));
      if (a.reason !== undefined) expectKind(err, 'AccountClosed', 'upgrade of a gone account');
      else {
        expect(err, 'upgrade').to.equal(undefined);
        world.addHandle(a, upgraded!);
      }
      return;
    }
    case 'closeAccount': {
      const h = handleAt(op.h);
      if (!h) return;
      const wasOpen = h.account.reason === undefined;
      // The model first (subscribers reached by the close may act on the model).
      h.closedByTest = true;
      h.handle.close();
      if (wasOpen && h.account.handles.every((x) => x.closedByTest)) {
        expect(h.account.reason, 'closing the last handle tears the account down').to.be.oneOf(['closed', 'reclaimed']);
      }
      return;
    }
    case 'register': {
      const h = handleAt(op.h);
      if (!h) return;
      const tp = new PropParticipant(op.oldestMode, op.reclaimMode, world);
      const deadBefore = handleDead(h);
      let registered = false;
      const err = outcome(() => {
        if (op.viaWith) {
          h.handle.registerParticipantWith((participation) => {
            tp.participation = participation;
            tp.claim(op.initial, world.clock.now());
            return tp;
          });
        } else {
          tp.participation = h.handle.registerParticipant(tp);
        }
        registered = true;
      });
      if (deadBefore) {
        expectKind(err, 'AccountClosed', 'register on a dead handle');
        return;
      }
      if (err !== undefined) {
        // Only a synchronous reclamation during construction may refuse it, and its claim is gone.
        expect(op.viaWith, 'register failed').to.equal(true);
        expectKind(err, EITHER_GONE, 'registerParticipantWith');
        expect(tp.participation.closed).to.equal(true);
        return;
      }
      expect(registered).to.equal(true);
      const mp: ModelParticipant = { tp, account: h.account, handles: [{ handle: tp.participation, closedByTest: false }] };
      tp.model = mp;
      world.participants.push(mp);
      if (!op.viaWith && op.initial > 0) tp.claim(op.initial, world.clock.now());
      return;
    }
    case 'claim': {
      const mp = participantAt(op.p);
      if (!mp) return;
      const gone = world.isGone(mp);
      const uncertain = !gone && mp.tp.pending;
      const err = outcome(() => mp.tp.claim(op.bytes, world.clock.now()));
      if (gone) expectKind(err, goneKind(mp), 'claim on a gone participant');
      else if (uncertain) {
        if (err !== undefined) expectKind(err, EITHER_GONE, 'claim while an answer is pending');
      } else expect(err, 'claim on a live participant').to.equal(undefined);
      return;
    }
    case 'claimBad': {
      const mp = participantAt(op.p);
      if (!mp) return;
      const before = [tracker.used, mp.tp.participation.claimed];
      expect(() => mp.tp.participation.claim(op.bad)).to.throw(RangeError);
      expect(() => mp.tp.participation.release(op.bad)).to.throw(RangeError);
      expect([tracker.used, mp.tp.participation.claimed], 'a bad count changes nothing').to.deep.equal(before);
      return;
    }
    case 'release': {
      const mp = participantAt(op.p);
      if (!mp) return;
      const gone = world.isGone(mp);
      if (op.bytes > mp.tp.held) {
        if (!gone) world.overRelease.max++;
        if (!gone && !mp.tp.pending) world.overRelease.min++;
      }
      expect(() => mp.tp.release(op.bytes), 'release never throws').not.to.throw();
      return;
    }
    case 'cloneParticipation': {
      const mp = participantAt(op.p);
      if (!mp) return;
      const gone = world.isGone(mp);
      let clone: Participation | undefined;
      const err = outcome(() => (clone = mp.tp.participation.clone()));
      if (gone) expectKind(err, goneKind(mp), 'clone of a gone participant');
      else if (err === undefined) mp.handles.push({ handle: clone!, closedByTest: false });
      else {
        expect(mp.tp.pending, 'clone refused though the participant is live').to.equal(true);
        expectKind(err, EITHER_GONE, 'clone while an answer is pending');
      }
      return;
    }
    case 'closeParticipation': {
      const mp = participantAt(op.p);
      if (!mp) return;
      const h = mp.handles[op.which % mp.handles.length]!;
      // The model first (subscribers reached by the close may act on the model).
      h.closedByTest = true;
      // The participant keeps talking through a handle that is still open.
      const open = mp.handles.find((x) => !x.closedByTest);
      if (open) mp.tp.participation = open.handle;
      h.handle.close();
      return;
    }
    case 'destroy': {
      const mp = participantAt(op.p);
      if (!mp) return;
      if (mp.handles.some((x) => !x.closedByTest)) mp.tp.gone = true; // the model first
      mp.tp.participation.destroy();
      return;
    }
    case 'setOldestMode': {
      const mp = participantAt(op.p);
      if (mp) {
        if (mp.tp.oldestMode === 'no-data' && op.mode !== 'no-data' && mp.tp.held > 0) mp.tp.ageAppearedSilently = true;
        mp.tp.oldestMode = op.mode;
      }
      return;
    }
    case 'setReclaimMode': {
      const mp = participantAt(op.p);
      if (mp) mp.tp.reclaimMode = op.mode;
      return;
    }
    case 'advance':
      world.clock.advance(op.ms);
      return;
    case 'reconfigure': {
      const lowWater = op.lowPercent === null ? Math.floor(op.max * 0.75) : Math.floor((op.max * op.lowPercent) / 100);
      const softMax = op.softPercent === null ? undefined : lowWater + Math.floor(((op.max - lowWater) * op.softPercent) / 100);
      tracker.reconfigure({ max: op.max, lowWater: op.lowPercent === null ? 'auto' : lowWater, softMax: softMax ?? 'auto' });
      expect([tracker.max, tracker.lowWater, tracker.softMax]).to.deep.equal([
        op.max,
        lowWater,
        softMax ?? Math.max(lowWater, Math.floor(op.max * 0.9)),
      ]);
      return;
    }
    case 'reconfigureBad': {
      const before = [tracker.max, tracker.lowWater, tracker.softMax];
      expect(() => tracker.reconfigure(BAD_CONFIGS[op.which]!)).to.throw(ConfigError);
      expect([tracker.max, tracker.lowWater, tracker.softMax], 'a bad config changes nothing').to.deep.equal(before);
      return;
    }
    case 'tick':
      await turns(1);
      return;
    case 'settle':
      await world.settle();
      return;
    case 'reentrant':
      subscribeReentrant(world, op);
      return;
  }
}

/**
 * A subscriber of `events$`, `usage$`, `pressure$` or an account's `collapsed$` that, the first
 * time the tracker tells it something after subscribing, does one operation of the model
 * (claim, release, close an account or a participation, open an account) from inside the
 * callback. The model's expectations about that operation hold as from outside.
 */
function subscribeReentrant(world: World, op: Extract<Op, { kind: 'reentrant' }>): void {
  const { tracker } = world;
  let armed = false;
  let done = false;
  // 'releaseAll': a cache that frees everything it holds when told (e.g. on 'high').
  const releaseAll = (): Op[] => world.participants.map((mp, p) => ({ kind: 'release' as const, p, bytes: mp.tp.held }));
  const inner: Op =
    op.action === 'claim'
      ? { kind: 'claim', p: op.target, bytes: op.bytes }
      : op.action === 'release'
        ? { kind: 'release', p: op.target, bytes: op.bytes }
        : op.action === 'closeAccount'
          ? { kind: 'closeAccount', h: op.target }
          : op.action === 'closeParticipation'
            ? { kind: 'closeParticipation', p: op.target, which: op.bytes }
            : { kind: 'newAccount' };
  const act = (): void => {
    if (!armed || done) return;
    // While a tear-down's notifications are in flight (the account is gone, its collapsed$ not
    // told yet) the model cannot predict the outcome: wait for the next notification.
    if (world.accounts.some((a) => a.reason === undefined && a.weak.closed)) return;
    done = true;
    // Synchronous operations: step() runs to completion before it returns its promise.
    for (const each of op.action === 'releaseAll' ? releaseAll() : [inner]) {
      step(world, each).catch((err: unknown) => world.violations.push(`reentrant ${op.action} in ${op.signal}: ${String(err)}`));
    }
  };
  switch (op.signal) {
    case 'events':
      tracker.events$.subscribe(() => act());
      break;
    case 'usage':
      tracker.usage$.subscribe(() => act());
      break;
    case 'pressure': {
      const seen: ('normal' | 'high')[] = [];
      world.pressureWatchers.push(seen);
      tracker.pressure$.subscribe((level) => {
        seen.push(level);
        act();
      });
      break;
    }
    case 'collapsed': {
      const h = world.accountHandles[op.target % Math.max(1, world.accountHandles.length)];
      if (h === undefined || h.closedByTest || h.account.reason !== undefined) return;
      h.handle.collapsed$.subscribe(() => act());
      break;
    }
  }
  armed = true;
}

async function runScenario(setup: Setup, ops: readonly Op[]): Promise<void> {
  const world = new World(setup);
  currentWorld = world;
  for (let i = 0; i < setup.accounts; i++) await step(world, { kind: 'newAccount' });
  for (const [i, p] of setup.participants.entries()) {
    await step(world, { kind: 'register', h: i, oldestMode: p.oldestMode, reclaimMode: p.reclaimMode, viaWith: i % 2 === 1, initial: 0 });
  }
  world.check();
  for (const [i, op] of ops.entries()) {
    try {
      await step(world, op);
      world.check();
      if (op.kind === 'settle') world.check();
    } catch (err) {
      if (err instanceof Error) err.message = `step ${i} ${JSON.stringify(op)}: ${err.message}`;
      throw err;
    }
  }
  await world.settle();
  world.check();

  // Close everything: nothing may be left in the books.
  for (const h of world.accountHandles) {
    h.handle.close();
    h.closedByTest = true;
  }
  for (const mp of world.participants) {
    for (const h of mp.handles) {
      h.handle.close();
      h.closedByTest = true;
    }
  }
  await world.settle();
  world.check();
  await turns(2);
  const report = world.tracker.audit();
  expect(world.tracker.used).to.equal(0);
  expect([report.accounts, report.participants]).to.deep.equal([0, 0]);
  expect(world.tracker.stats).to.deep.include({ accounts: 0, participants: 0 });
  expect(world.pressure.at(-1)).to.equal('normal');
  expect(world.violations).to.deep.equal([]);
}

/** `PROPERTY_REPLAY='{"seed":…,"path":"…"}'` replays one failure (select its property with `-g`). */
function replay(): { seed?: number; path?: string } {
  const text = process.env['PROPERTY_REPLAY'];
  return text === undefined ? {} : (JSON.parse(text) as { seed: number; path: string });
}

describe('MemoryQuotaTracker (property-based)', () => {
  it('keeps the books right through random operation sequences, after every step and after settling', async () => {
    await fc.assert(
      fc.asyncProperty(setupArb, fc.array(opArb, { minLength: 1, maxLength: 100, size: 'max' }), runScenario),
      { numRuns: 150, ...replay() },
    );
  });

  it('keeps them right under heavy reclamation with tiny claims and a tiny quota', async () => {
    const tinyOps = opArb.map((op): Op => (op.kind === 'claim' ? { ...op, bytes: op.bytes % 700 } : op));
    await fc.assert(
      fc.asyncProperty(
        setupArb.map((s) => ({ ...s, max: 2000 + (s.max % 1000) })),
        fc.array(tinyOps, { minLength: 20, maxLength: 150, size: 'max' }),
        runScenario,
      ),
      { numRuns: 60, ...replay() },
    );
  });
});
