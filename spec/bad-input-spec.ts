/**
 * Bad input at every public entry point, as a table.
 *
 * Each row names an entry point and a bad argument (or a dead handle), the error class it must
 * throw (with `kind` for `MemquotaError`, `fields` for `ConfigError`) and a pattern the
 * message must match, so the message names the problem. Every row runs against a fresh
 * "world" that already holds memory, and checks that the call changed nothing: the audit, the
 * counters, `used`/`max`/`lowWater`/`softMax` are identical before and after, no event was
 * emitted, and `expectBooks` balances against the spec's own ledger.
 */
import { expect } from 'chai';
import { asyncScheduler, of, queueScheduler, type Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import * as lib from '../index.js';
import {
  Account,
  ConfigError,
  MemoryQuotaTracker,
  MemquotaError,
  type MemquotaConfig,
  type MemquotaChannel,
  type MemquotaErrorKind,
  type MemquotaEvent,
  type Participant,
  type TrackerOptions,
  type WeakAccount,
} from '../index.js';
import { expectBooks, TestParticipant } from './helpers/books.js';

const MAX = 1 << 20;

/** A tracker holding memory in a small hierarchy, plus handles in every dead state. */
class World {
  clock = 1000;
  readonly tracker = MemoryQuotaTracker.create({ max: MAX }, { scheduler: queueScheduler, now: () => this.clock });
  readonly root: Account;
  readonly child: Account;
  readonly rootP = new TestParticipant();
  readonly childP = new TestParticipant();
  /** Every participant the world made, for the ledger in `expectBooks`. */
  readonly participants: TestParticipant[] = [this.rootP, this.childP];
  /** Accounts a row set aside (of this or another tracker), kept alive by the world. */
  readonly strangers: Account[] = [];
  /** Weak handles a row set aside. */
  readonly weak: WeakAccount[] = [];

  constructor() {
    this.root = this.tracker.newAccount();
    this.child = this.root.newChild();
    this.register(this.root, this.rootP).claim(1000, this.clock);
    this.register(this.child, this.childP).claim(500, this.clock);
  }

  register(account: Account, p: TestParticipant): TestParticipant {
    p.participation = account.registerParticipant(p);
    if (!this.participants.includes(p)) this.participants.push(p);
    return p;
  }

  /** A live participant in `root` that holds `bytes`. */
  participant(bytes = 0): TestParticipant {
    const p = this.register(this.root, new TestParticipant());
    if (bytes > 0) p.claim(bytes, this.clock);
    return p;
  }

  /** An account torn down by reclamation: its data is the oldest when `max` is passed. */
  reclaimedAccount(): Account {
    const victim = this.tracker.newAccount();
    const p = this.register(victim, new TestParticipant());
    p.claim(MAX, this.clock - 500); // passes max; queueScheduler reclaims at the end of the claim
    expect(victim.closed, 'the victim was reclaimed').to.equal(true);
    return victim;
  }

  /** An account of another (real) tracker. */
  foreignAccount(): Account {
    const other = MemoryQuotaTracker.create({ max: MAX });
    const account = other.newAccount();
    this.strangers.push(account);
    return account;
  }

  /** An account of a no-op tracker. */
  noopAccount(): Account {
    const account = MemoryQuotaTracker.noop().newAccount();
    this.strangers.push(account);
    return account;
  }
}

/** Everything a bad call must leave untouched. */
function snapshot(tracker: MemoryQuotaTracker): unknown {
  return {
    used: tracker.used,
    max: tracker.max,
    lowWater: tracker.lowWater,
    softMax: tracker.softMax,
    audit: tracker.audit(),
    stats: tracker.stats,
  };
}

type ErrorClass = abstract new (...args: never[]) => Error;

interface Row {
  /** What is called with what. */
  readonly name: string;
  /** Brings the world into the state the row needs (not part of the checked call). */
  readonly arrange?: (world: World) => void;
  /** The bad call; must throw. */
  readonly act: (world: World) => unknown;
  readonly error: ErrorClass;
  readonly kind?: MemquotaErrorKind;
  readonly fields?: readonly string[];
  readonly message: RegExp;
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectError(err: unknown, row: Pick<Row, 'error' | 'kind' | 'fields' | 'message'>): void {
  expect(err, 'the call threw').to.be.instanceOf(Error);
  const e = err as Error;
  expect(e, `${e.name}: ${e.message}`).to.be.instanceOf(row.error);
  expect(e.name, 'error name').to.equal(row.error.name);
  if (row.kind !== undefined) expect((e as MemquotaError).kind, 'kind').to.equal(row.kind);
  if (row.fields !== undefined) expect((e as ConfigError).fields, 'fields').to.deep.equal(row.fields);
  expect(e.message, 'message').to.match(row.message);
}

/** Runs the row in a fresh world and checks the error and that the books did not move. */
function check(row: Row): void {
  const world = new World();
  row.arrange?.(world);
  expectBooks(world.tracker, world.participants);
  const events: MemquotaEvent[] = [];
  const sub = world.tracker.events$.subscribe((e) => events.push(e));
  const before = snapshot(world.tracker);

  const err = thrownBy(() => row.act(world));

  expectError(err, row);
  expect(snapshot(world.tracker), 'books, config and counters after the bad call').to.deep.equal(before);
  expect(events, 'events emitted by the bad call').to.deep.equal([]);
  expectBooks(world.tracker, world.participants);
  sub.unsubscribe();
}

function label(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return Object.is(value, 2 ** 53) ? '2**53' : String(value);
}

/** How a configuration error shows the bad value. */
function described(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// -----------------------------------------------------------------------------------------
// Byte counts

const badCounts: readonly unknown[] = [-1, -0.5, NaN, Infinity, -Infinity, 1.5, 2 ** 53, Number.MAX_VALUE, '5', null, undefined, {}, 5n];

/** How the message shows the bad value: the number itself, or its type and text. */
function shown(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value;
}

const byteRows: Row[] = [];
for (const value of badCounts) {
  for (const op of ['claim', 'release'] as const) {
    const message = new RegExp(`^${op}\\(${escape(shown(value))}.*\\): the byte count must be a non-negative safe integer`);
    byteRows.push(
      {
        name: `participation.${op}(${label(value)}) on a live participant`,
        act: (w) => w.rootP.participation[op](value as number),
        error: RangeError,
        message,
      },
      {
        name: `participation.${op}(${label(value)}) on a closed participation (the count is checked first)`,
        arrange: (w) => w.participant(100).participation.close(),
        act: (w) => w.participants[2]!.participation[op](value as number),
        error: RangeError,
        message,
      },
    );
  }
}
byteRows.push({
  name: 'participation.claim() taking the total past Number.MAX_SAFE_INTEGER',
  act: (w) => w.rootP.participation.claim(Number.MAX_SAFE_INTEGER - 1000),
  error: RangeError,
  message: /past Number\.MAX_SAFE_INTEGER/,
});

// -----------------------------------------------------------------------------------------
// Configurations and tracker options

interface ConfigRow {
  readonly config: unknown;
  readonly fields: readonly string[];
  readonly message: RegExp;
}

const badConfigs: readonly ConfigRow[] = [
  { config: null, fields: [], message: /config must be an object, got null/ },
  { config: 5, fields: [], message: /config must be an object, got 5/ },
  { config: 'auto', fields: [], message: /config must be an object, got "auto"/ },
  ...[0, -1, 1.5, NaN, -Infinity, 2 ** 53, '1000', null, 'AUTO', true].map(
    (max): ConfigRow => ({ config: { max }, fields: ['max'], message: new RegExp(`^max must be 'auto', Infinity or a positive safe integer of bytes, got ${escape(described(max))}$`) }),
  ),
  ...(['lowWater', 'softMax'] as const).flatMap((field) =>
    [0, -1, 1.5, NaN, Infinity, 2 ** 53, '10', null, 'Auto'].map(
      (value): ConfigRow => ({
        config: { max: 1000, [field]: value },
        fields: [field],
        message: new RegExp(`^${field} must be 'auto' or a positive safe integer of bytes, got ${escape(described(value))}$`),
      }),
    ),
  ),
  { config: { lowWater: 100 }, fields: ['max', 'lowWater'], message: /explicit lowWater \(100\) needs an explicit max/ },
  { config: { max: 'auto', lowWater: 100 }, fields: ['max', 'lowWater'], message: /explicit lowWater \(100\) needs an explicit max/ },
  { config: { softMax: 100 }, fields: ['max', 'softMax'], message: /explicit softMax \(100\) needs an explicit max/ },
  { config: { max: 1000, lowWater: 981 }, fields: ['lowWater', 'max'], message: /lowWater \(981\) must not exceed 98 % of max \(1000\)/ },
  { config: { max: 1000, lowWater: 1000 }, fields: ['lowWater', 'max'], message: /lowWater \(1000\) must not exceed 98 % of max \(1000\)/ },
  { config: { max: 1000, lowWater: 5000 }, fields: ['lowWater', 'max'], message: /lowWater \(5000\) must not exceed 98 % of max \(1000\)/ },
  { config: { max: 1000, lowWater: 800, softMax: 700 }, fields: ['softMax', 'lowWater', 'max'], message: /softMax \(700\) must lie between lowWater \(800\) and max \(1000\)/ },
  { config: { max: 1000, softMax: 1001 }, fields: ['softMax', 'lowWater', 'max'], message: /softMax \(1001\) must lie between lowWater \(750\) and max \(1000\)/ },
  { config: { max: 1000, softMax: 100 }, fields: ['softMax', 'lowWater', 'max'], message: /softMax \(100\) must lie between lowWater \(750\) and max \(1000\)/ },
];

const configRows: Row[] = badConfigs.flatMap((c): Row[] => [
  {
    name: `MemoryQuotaTracker.create(${label(c.config)})`,
    act: () => MemoryQuotaTracker.create(c.config as MemquotaConfig),
    error: ConfigError,
    fields: c.fields,
    message: c.message,
  },
  {
    name: `tracker.reconfigure(${label(c.config)})`,
    act: (w) => w.tracker.reconfigure(c.config as MemquotaConfig),
    error: ConfigError,
    fields: c.fields,
    message: c.message,
  },
]);

const notAScheduler = { now: () => 0 } as unknown as SchedulerLike;
const badOptions: readonly { readonly name: string; readonly options: unknown; readonly fields: readonly string[]; readonly message: RegExp }[] = [
  { name: 'null', options: null, fields: [], message: /options must be an object, got null/ },
  { name: '"fast"', options: 'fast', fields: [], message: /options must be an object, got fast/ },
  { name: '{ now: 5 }', options: { now: 5 }, fields: ['now'], message: /now must be a function returning milliseconds, got number/ },
  { name: "{ now: 'performance' }", options: { now: 'performance' }, fields: ['now'], message: /now must be a function returning milliseconds, got string/ },
  { name: '{ scheduler: {} }', options: { scheduler: {} }, fields: ['scheduler'], message: /scheduler must be an RxJS SchedulerLike/ },
  { name: '{ scheduler: { now } } (no schedule())', options: { scheduler: notAScheduler }, fields: ['scheduler'], message: /scheduler must be an RxJS SchedulerLike/ },
  { name: '{ scheduler: null }', options: { scheduler: null }, fields: ['scheduler'], message: /scheduler must be an RxJS SchedulerLike/ },
  { name: "{ victimPolicy: 'newest' }", options: { victimPolicy: 'newest' }, fields: ['victimPolicy'], message: /victimPolicy must be 'oldest' or 'largest', got newest/ },
  { name: "{ victimPolicy: 'OLDEST' }", options: { victimPolicy: 'OLDEST' }, fields: ['victimPolicy'], message: /victimPolicy must be 'oldest' or 'largest', got OLDEST/ },
];

const optionRows: Row[] = badOptions.map((o) => ({
  name: `MemoryQuotaTracker.create({ max }, ${o.name})`,
  act: () => MemoryQuotaTracker.create({ max: MAX }, o.options as TrackerOptions),
  error: ConfigError,
  fields: o.fields,
  message: o.message,
}));

// -----------------------------------------------------------------------------------------
// Non-Account values where an Account is expected; participants without methods

const notAccounts: readonly { readonly name: string; readonly value: (w: World) => unknown; readonly message: RegExp }[] = [
  { name: 'null', value: () => null, message: /must be an Account of rxjs-memquota, got null/ },
  { name: 'a number', value: () => 42, message: /must be an Account of rxjs-memquota, got number/ },
  { name: 'a plain object', value: () => ({ id: 1, closed: false }), message: /must be an Account of rxjs-memquota, got object/ },
  { name: 'a WeakAccount', value: (w) => w.root.downgrade(), message: /must be an Account of rxjs-memquota, got object/ },
  { name: 'a Participation', value: (w) => w.rootP.participation, message: /must be an Account of rxjs-memquota, got object/ },
  { name: 'a function returning an Account', value: (w) => () => w.root, message: /must be an Account of rxjs-memquota, got function/ },
  { name: 'an Account of another tracker', value: (w) => w.foreignAccount(), message: /belongs to another tracker/ },
  { name: 'an Account of a no-op tracker', value: (w) => w.noopAccount(), message: /belongs to a no-op tracker/ },
];

const accountRows: Row[] = notAccounts.flatMap((a): Row[] => [
  { name: `tracker.newAccount(${a.name})`, act: (w) => w.tracker.newAccount(a.value(w) as Account), error: TypeError, message: new RegExp(`^parent ${a.message.source}`) },
  { name: `account.addParent(${a.name})`, act: (w) => w.child.addParent(a.value(w) as Account), error: TypeError, message: new RegExp(`^parent ${a.message.source}`) },
]);
accountRows.push(
  {
    name: 'account.addParent(itself)',
    act: (w) => w.root.addParent(w.root),
    error: TypeError,
    message: /cannot be a parent of account \d+: it is the same account, which would make a cycle/,
  },
  {
    name: 'account.addParent(its own child)',
    act: (w) => w.root.addParent(w.child),
    error: TypeError,
    message: /cannot be a parent of account \d+: it is a descendant, which would make a cycle/,
  },
  {
    name: 'account.addParent(a grandchild)',
    arrange: (w) => void w.strangers.push(w.child.newChild()),
    act: (w) => w.root.addParent(w.strangers[0]!),
    error: TypeError,
    message: /it is a descendant, which would make a cycle/,
  },
  {
    name: 'account.addParent(a parent it already has)',
    act: (w) => w.child.addParent(w.root),
    error: MemquotaError,
    kind: 'ChildAccountAlreadyExists',
    message: /account \d+ is already a parent of account \d+/,
  },
  {
    name: 'account.addParent(a closed handle)',
    arrange: (w) => {
      w.strangers.push(w.root.clone(), w.child.newChild());
      w.strangers[0]!.close();
    },
    act: (w) => w.strangers[1]!.addParent(w.strangers[0]!),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /this Account handle was closed/,
  },
  {
    name: 'account.addParent(a reclaimed account)',
    arrange: (w) => void w.strangers.push(w.reclaimedAccount()),
    act: (w) => w.child.addParent(w.strangers[0]!),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /account \d+ was reclaimed/,
  },
);

const notParticipants: readonly { readonly name: string; readonly value: unknown }[] = [
  { name: 'null', value: null },
  { name: 'undefined', value: undefined },
  { name: '{}', value: {} },
  { name: 'a function', value: () => 'collapsing' },
  { name: 'one without reclaim()', value: { getOldest: () => undefined } },
  { name: 'one without getOldest()', value: { reclaim: () => 'collapsing' } },
  { name: 'one whose methods are not functions', value: { getOldest: 1, reclaim: 'collapsing' } },
];

const participantRows: Row[] = [
  ...notParticipants.map(
    (p): Row => ({
      name: `account.registerParticipant(${p.name})`,
      act: (w) => w.root.registerParticipant(p.value as Participant),
      error: TypeError,
      message: /participant must have getOldest\(\) and reclaim\(\) methods/,
    }),
  ),
  ...notParticipants.map(
    (p): Row => ({
      name: `account.registerParticipantWith(make returning ${p.name}, after claiming)`,
      act: (w) =>
        w.root.registerParticipantWith((participation) => {
          participation.claim(300);
          return p.value as Participant;
        }),
      error: TypeError,
      message: /make\(\) must return an object with getOldest\(\) and reclaim\(\)/,
    }),
  ),
  ...[null, undefined, 5, {}].map(
    (make): Row => ({
      name: `account.registerParticipantWith(${label(make)})`,
      act: (w) => w.root.registerParticipantWith(make as unknown as () => Participant),
      error: TypeError,
      message: /registerParticipantWith needs a function/,
    }),
  ),
  {
    name: 'account.registerParticipantWith(make that claims, then throws)',
    act: (w) =>
      w.root.registerParticipantWith((participation) => {
        participation.claim(300);
        throw new SyntaxError('the constructor failed');
      }),
    error: SyntaxError,
    message: /^the constructor failed$/,
  },
];

// -----------------------------------------------------------------------------------------
// Closed handles and a shut-down tracker

const closedRows: Row[] = [
  {
    name: 'claim on a closed participation',
    arrange: (w) => w.participant(100).participation.close(),
    act: (w) => w.participants[2]!.participation.claim(1),
    error: MemquotaError,
    kind: 'ParticipantShutdown',
    message: /this Participation handle was closed/,
  },
  {
    name: 'claim through the other handle of a destroyed participant',
    arrange: (w) => {
      const p = w.participant(100);
      const other = p.participation.clone();
      p.participation.destroy();
      p.participation = other;
    },
    act: (w) => w.participants[2]!.participation.claim(1),
    error: MemquotaError,
    kind: 'ParticipantShutdown',
    message: /the participant is gone: it was torn down/,
  },
  {
    name: 'claim after the account was closed',
    arrange: (w) => {
      const account = w.tracker.newAccount();
      w.register(account, new TestParticipant()).claim(10, w.clock);
      account.close();
    },
    act: (w) => w.participants[2]!.participation.claim(1),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /^account \d+ was closed$/,
  },
  {
    name: 'claim after the account was reclaimed',
    arrange: (w) => void w.reclaimedAccount(),
    act: (w) => w.participants[2]!.participation.claim(1),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /^account \d+ was reclaimed/,
  },
  {
    name: 'participation.clone() of a closed handle',
    arrange: (w) => w.participant(100).participation.close(),
    act: (w) => w.participants[2]!.participation.clone(),
    error: MemquotaError,
    kind: 'ParticipantShutdown',
    message: /this Participation handle was closed/,
  },
  {
    name: 'participation.account() of a closed handle',
    arrange: (w) => w.participant(100).participation.close(),
    act: (w) => w.participants[2]!.participation.account(),
    error: MemquotaError,
    kind: 'ParticipantShutdown',
    message: /this Participation handle was closed/,
  },
  {
    name: 'newChild on a closed account handle (the account itself still open)',
    arrange: (w) => {
      w.strangers.push(w.root.clone());
      w.strangers[0]!.close();
    },
    act: (w) => w.strangers[0]!.newChild(),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /this Account handle was closed/,
  },
  {
    name: 'newChild on a reclaimed account',
    arrange: (w) => void w.strangers.push(w.reclaimedAccount()),
    act: (w) => w.strangers[0]!.newChild(),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /account \d+ was reclaimed/,
  },
  {
    name: 'tracker.newAccount(a reclaimed parent)',
    arrange: (w) => void w.strangers.push(w.reclaimedAccount()),
    act: (w) => w.tracker.newAccount(w.strangers[0]!),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /account \d+ was reclaimed/,
  },
  ...(['clone', 'downgrade', 'newChild'] as const).map(
    (method): Row => ({
      name: `account.${method}() after close()`,
      arrange: (w) => {
        w.strangers.push(w.tracker.newAccount());
        w.strangers[0]!.close();
      },
      act: (w) => w.strangers[0]![method](),
      error: MemquotaError,
      kind: 'AccountClosed',
      message: /this Account handle was closed/,
    }),
  ),
  {
    name: 'registerParticipant on a closed account handle',
    arrange: (w) => {
      w.strangers.push(w.tracker.newAccount());
      w.strangers[0]!.close();
    },
    act: (w) => w.strangers[0]!.registerParticipant(new TestParticipant()),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /this Account handle was closed/,
  },
  {
    name: 'registerParticipant on a reclaimed account',
    arrange: (w) => void w.strangers.push(w.reclaimedAccount()),
    act: (w) => w.strangers[0]!.registerParticipant(new TestParticipant()),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /account \d+ was reclaimed/,
  },
  {
    name: 'weakAccount.upgrade() of a closed account',
    arrange: (w) => {
      const account = w.tracker.newAccount();
      w.weak.push(account.downgrade());
      account.close();
    },
    act: (w) => w.weak[0]!.upgrade(),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /account \d+ was closed/,
  },
  {
    name: 'weakAccount.upgrade() of a reclaimed account',
    arrange: (w) => void w.strangers.push(w.reclaimedAccount()),
    act: (w) => w.participants[2]!.participation.account().upgrade(),
    error: MemquotaError,
    kind: 'AccountClosed',
    message: /account \d+ was reclaimed/,
  },
];

type ShutdownCall = readonly [string, (w: World) => unknown];
const afterShutdown: readonly ShutdownCall[] = [
  ['tracker.newAccount()', (w) => w.tracker.newAccount()],
  ['account.newChild()', (w) => w.root.newChild()],
  ['account.clone()', (w) => w.root.clone()],
  ['account.addParent()', (w) => w.child.addParent(w.strangers[0]!)],
  ['account.registerParticipant()', (w) => w.root.registerParticipant(new TestParticipant())],
  ['account.registerParticipantWith()', (w) => w.root.registerParticipantWith(() => new TestParticipant())],
  ['participation.claim()', (w) => w.rootP.participation.claim(1)],
  ['weakAccount.upgrade()', (w) => w.root.downgrade().upgrade()],
];

const shutdownRows: Row[] = afterShutdown.map(([name, act]) => ({
  name: `${name} on a shut-down tracker`,
  arrange: (w) => {
    w.strangers.push(w.tracker.newAccount());
    w.tracker.shutdown();
  },
  act,
  error: MemquotaError,
  kind: 'TrackerShutdown',
  message: /the memory quota tracker was shut down/,
}));

// -----------------------------------------------------------------------------------------
// The operators: account argument, factory, options, cost answers

type OperatorName = 'memquota' | 'memquotaMap' | 'memquotaQueue';
const operatorNames: readonly OperatorName[] = ['memquota', 'memquotaMap', 'memquotaQueue'];
/** The operators looked up through the public index, typed loosely on purpose (bad input). */
const exported = lib as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>;
const presentOperators = operatorNames.filter((name) => exported[name] !== undefined);

/** Creates the operator with `account` and `options` (memquotaMap gets a pass-through project). */
function createOperator(name: OperatorName, account: unknown, options?: unknown): unknown {
  const op = exported[name]!;
  return name === 'memquotaMap' ? op(account, (v: unknown) => of(v), options) : op(account, options);
}

/** Subscribes and throws the error the observable delivered synchronously (or says it delivered none). */
function throwDelivered(observable: Observable<unknown>): void {
  let delivered: { error: unknown } | undefined;
  let ended = 'nothing';
  const sub = observable.subscribe({
    error: (error: unknown) => (delivered = { error }),
    complete: () => (ended = 'complete'),
  });
  sub.unsubscribe();
  if (delivered !== undefined) throw delivered.error;
  throw new Error(`no error was delivered (${ended})`);
}

/**
 * Uses the operator the way a program would: creates it (pipe time), feeds it one value and
 * subscribes (subscribe time), and throws whatever error came out at either point. The channel
 * of memquotaQueue is fed through its sender and read through its receiver.
 */
function useOperator(name: OperatorName, account: unknown, options?: unknown, value: unknown = 'a value'): void {
  const made = createOperator(name, account, options);
  if (name === 'memquotaQueue') {
    const { sender, receiver } = made as MemquotaChannel<unknown>;
    sender.next(value);
    sender.complete();
    return throwDelivered(receiver);
  }
  throwDelivered(of(value).pipe(made as OperatorFunction<unknown, unknown>));
}

const notAccountArgs: readonly (readonly [string, (w: World) => unknown, string])[] = [
  ['null', () => null, 'null'],
  ['undefined', () => undefined, 'undefined'],
  ['42', () => 42, 'number'],
  ['"account"', () => 'account', 'string'],
  ['a plain object', () => ({ id: 1 }), 'object'],
  ['a WeakAccount', (w) => w.root.downgrade(), 'object'],
  ['a Participation', (w) => w.rootP.participation, 'object'],
];

const badFactories: readonly (readonly [string, (w: World) => unknown, string])[] = [
  ['null', () => null, 'null'],
  ['undefined', () => undefined, 'undefined'],
  ['42', () => 42, 'number'],
  ['a WeakAccount', (w) => w.root.downgrade(), 'object'],
  ['the factory itself', () => () => undefined, 'function'],
];

interface OptionCase {
  readonly name: string;
  readonly options: unknown;
  readonly error: ErrorClass;
  readonly message: (op: OperatorName) => RegExp;
  readonly only?: readonly OperatorName[];
}

const badOperatorOptions: readonly OptionCase[] = [
  ...[null, 5, 'fast'].map(
    (options): OptionCase => ({
      name: label(options),
      options,
      error: TypeError,
      message: (op) => new RegExp(`^${op}: options must be an object`),
    }),
  ),
  ...[0, -1, 1.5, NaN, -Infinity].map(
    (concurrency): OptionCase => ({
      name: `{ concurrency: ${label(concurrency)} }`,
      options: { concurrency },
      error: RangeError,
      message: (op) => new RegExp(`^${op}: concurrency must be an integer ≥ 1 or Infinity, got ${String(concurrency)}$`),
      only: ['memquotaMap'],
    }),
  ),
  ...['2', true].map(
    (concurrency): OptionCase => ({
      name: `{ concurrency: ${label(concurrency)} }`,
      options: { concurrency },
      error: TypeError,
      message: (op) => new RegExp(`^${op}: concurrency must be a number, got ${typeof concurrency}$`),
      only: ['memquotaMap'],
    }),
  ),
  ...[5, 'memoryCost', {}, null].map(
    (cost): OptionCase => ({
      name: `{ cost: ${label(cost)} }`,
      options: { cost },
      error: TypeError,
      message: (op) => new RegExp(`^${op}: cost must be a function\\b.*, got ${cost === null ? 'object' : typeof cost}$`),
    }),
  ),
  ...['ignore', 'ERROR', null, 1].map(
    (onReclaim): OptionCase => ({
      name: `{ onReclaim: ${label(onReclaim)} }`,
      options: { onReclaim },
      error: TypeError,
      message: (op) => new RegExp(`^${op}: onReclaim must be 'error', 'complete' or 'drop-oldest', got ${String(onReclaim)}$`),
      only: ['memquota', 'memquotaQueue'],
    }),
  ),
  ...[{}, null, 'asap', { now: () => 0 }].map(
    (scheduler): OptionCase => ({
      name: `{ scheduler: ${label(scheduler)} }`,
      options: { scheduler },
      error: TypeError,
      message: (op) => new RegExp(`^${op}: scheduler must be an RxJS SchedulerLike$`),
      only: ['memquota'],
    }),
  ),
];

/** Cost functions answering something that is not a byte count, and one that throws. */
const badCosts: readonly (readonly [string, () => unknown, ErrorClass, RegExp])[] = [
  ...[-1, NaN, Infinity, 1.5, 2 ** 53, '5', undefined, null].map(
    (answer): readonly [string, () => unknown, ErrorClass, RegExp] => [
      `a cost answering ${label(answer)}`,
      () => answer,
      RangeError,
      // A string answer is quoted, so that '5' does not read as the number 5.
      new RegExp(`^cost returned ${escape(typeof answer === 'string' ? JSON.stringify(answer) : String(answer))}: it must be a non-negative safe integer of bytes$`),
    ],
  ),
  [
    'a cost that throws',
    () => {
      throw new SyntaxError('cost failed');
    },
    SyntaxError,
    /^cost failed$/,
  ],
];

const operatorRows: Row[] = [];
for (const name of presentOperators) {
  for (const [what, value, type] of notAccountArgs) {
    operatorRows.push({
      name: `${name}(${what}) as the account`,
      act: (w) => createOperator(name, value(w)),
      error: TypeError,
      message: new RegExp(`^${name}: account must be an Account or a function returning one, got ${type}$`),
    });
  }
  for (const [what, value, type] of badFactories) {
    operatorRows.push({
      name: `${name}(a factory returning ${what})`,
      act: (w) => useOperator(name, () => value(w)),
      error: TypeError,
      message: new RegExp(`^${name}: the account factory must return an Account, got ${type}$`),
    });
  }
  operatorRows.push(
    {
      name: `${name}(a factory that throws)`,
      act: () =>
        useOperator(name, () => {
          throw new SyntaxError('no account for you');
        }),
      error: SyntaxError,
      message: /^no account for you$/,
    },
    {
      name: `${name}(a closed Account handle)`,
      arrange: (w) => {
        w.strangers.push(w.root.clone());
        w.strangers[0]!.close();
      },
      act: (w) => useOperator(name, w.strangers[0]!),
      error: MemquotaError,
      kind: 'AccountClosed',
      message: /this Account handle was closed/,
    },
    {
      name: `${name}(a factory returning a closed Account handle)`,
      arrange: (w) => {
        w.strangers.push(w.root.clone());
        w.strangers[0]!.close();
      },
      act: (w) => useOperator(name, () => w.strangers[0]!),
      error: MemquotaError,
      kind: 'AccountClosed',
      message: /this Account handle was closed/,
    },
    {
      name: `${name}(a reclaimed account)`,
      arrange: (w) => void w.strangers.push(w.reclaimedAccount()),
      act: (w) => useOperator(name, w.strangers[0]!),
      error: MemquotaError,
      kind: 'AccountClosed',
      message: /account \d+ was reclaimed/,
    },
    {
      name: `${name}(an account of a shut-down tracker)`,
      arrange: (w) => w.tracker.shutdown(),
      act: (w) => useOperator(name, w.root),
      error: MemquotaError,
      kind: 'TrackerShutdown',
      message: /the memory quota tracker was shut down/,
    },
  );
  for (const option of badOperatorOptions) {
    if (option.only !== undefined && !option.only.includes(name)) continue;
    operatorRows.push({
      name: `${name}(account, ${option.name})`,
      act: (w) => createOperator(name, w.root, option.options),
      error: option.error,
      message: option.message(name),
    });
  }
  if (name === 'memquotaMap') {
    for (const project of [null, undefined, 5, {}, 'map']) {
      operatorRows.push({
        name: `memquotaMap(account, ${label(project)} as the project)`,
        act: (w) => exported.memquotaMap!(w.root, project),
        error: TypeError,
        message: new RegExp(`^memquotaMap: project must be a function, got ${typeof project}$`),
      });
    }
  }
  for (const [what, cost, error, message] of badCosts) {
    operatorRows.push({
      name: `${name}(account, { cost: ${what} }) given a value`,
      act: (w) => useOperator(name, w.root, { cost }),
      error,
      message,
    });
  }
}
// shedOnPressure(tracker, { mode })
if (exported.shedOnPressure !== undefined) {
  const shed = exported.shedOnPressure;
  const notTrackers: readonly (readonly [string, (w: World) => unknown, string])[] = [
    ['null', () => null, 'null'],
    ['undefined', () => undefined, 'undefined'],
    ['42', () => 42, 'number'],
    ['a plain object with used and softMax', () => ({ used: 0, softMax: 1 }), 'object'],
    ['an Account', (w) => w.root, 'object'],
  ];
  for (const [what, value, type] of notTrackers) {
    operatorRows.push({
      name: `shedOnPressure(${what}) as the tracker`,
      act: (w) => shed(value(w), { mode: 'drop' }),
      error: TypeError,
      message: new RegExp(`^shedOnPressure: tracker must be a MemoryQuotaTracker, got ${type}$`),
    });
  }
  for (const options of [null, 5]) {
    operatorRows.push({
      name: `shedOnPressure(tracker, ${label(options)})`,
      act: (w) => shed(w.tracker, options),
      error: TypeError,
      message: /^shedOnPressure: options must be an object/,
    });
  }
  for (const mode of ['block', 'DROP', null, 1]) {
    operatorRows.push({
      name: `shedOnPressure(tracker, { mode: ${label(mode)} })`,
      act: (w) => shed(w.tracker, { mode }),
      error: TypeError,
      message: new RegExp(`^shedOnPressure: mode must be 'drop' or 'error', got ${String(mode)}$`),
    });
  }
}

// -----------------------------------------------------------------------------------------

const tables: readonly (readonly [string, readonly Row[]])[] = [
  ['byte counts', byteRows],
  ['configurations', configRows],
  ['tracker options', optionRows],
  ['non-Account values where an Account is expected', accountRows],
  ['participants', participantRows],
  ['closed handles', closedRows],
  ['a shut-down tracker', shutdownRows],
  ['operators', operatorRows],
];

describe('bad input', () => {
  for (const [title, rows] of tables) {
    describe(title, () => {
      for (const row of rows) it(`${row.name} → ${row.error.name}${row.kind ? ` ${row.kind}` : ''}`, () => check(row));
    });
  }

  describe('release never throws for a dead handle', () => {
    const rows: readonly (readonly [string, (w: World) => TestParticipant])[] = [
      ['closed participation', (w) => {
        const p = w.participant(100);
        p.participation.close();
        return p;
      }],
      ['destroyed participant', (w) => {
        const p = w.participant(100);
        p.participation.destroy();
        return p;
      }],
      ['reclaimed account', (w) => {
        w.reclaimedAccount();
        return w.participants[2]!;
      }],
      ['shut-down tracker', (w) => {
        w.tracker.shutdown();
        return w.rootP;
      }],
    ];
    for (const [name, arrange] of rows) {
      it(`release(10) after: ${name}`, () => {
        const world = new World();
        const p = arrange(world);
        const before = snapshot(world.tracker);
        expect(() => p.participation.release(10)).not.to.throw();
        expect(snapshot(world.tracker)).to.deep.equal(before);
        expectBooks(world.tracker, world.participants);
      });
    }
  });

  describe('the world itself', () => {
    it('is sound: a good call on it changes the books (so "unchanged" above means something)', () => {
      const world = new World();
      const before = snapshot(world.tracker);
      world.rootP.claim(1, world.clock);
      expect(snapshot(world.tracker)).not.to.deep.equal(before);
      expectBooks(world.tracker, world.participants, { accounts: 2, participants: 2 });
    });

    it('covers every exported operator', () => {
      expect(presentOperators, 'the operators exported by the index').to.include.members(['memquota', 'memquotaQueue']);
      for (const name of presentOperators) expect(operatorRows.some((row) => row.name.startsWith(`${name}(`)), name).to.equal(true);
      // a tracker with an asynchronous scheduler is valid (the options table only lists bad ones)
      expect(() => MemoryQuotaTracker.create({ max: MAX }, { scheduler: asyncScheduler })).not.to.throw();
    });
  });
});
