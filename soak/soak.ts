/**
 * The soak: churn, faults and forced garbage collection against the whole library, bounded in
 * time, checking the books all along.
 *
 * `npm run soak` (60 s) or `npm run soak:short` (10 s, part of `npm test`);
 * flags: `--seconds N`, `--seed N` (or `--seed random`), `--quiet`.
 *
 * What it does, driven by a seeded PRNG (the seed is printed; `--seed` replays a run as far as
 * the event loop's timing allows):
 * - thousands of streams opened and closed at random through `memquota`, `memquotaMap` and
 *   `memquotaQueue`, plus hand-written participants, over accounts that come and go (shared
 *   connection accounts, per-stream factory accounts, several parents);
 * - consumers that keep up, lag (async or hand-pumped delivery, slow `for await`) or stall
 *   for good (a scheduler that never runs, an inner observable that never completes, a
 *   channel nobody reads);
 * - faults: throwing `cost`, throwing `getOldest`, throwing / rejecting / nonsense `reclaim`,
 *   slow asynchronous `reclaim`, participants that lie about their data, over-release,
 *   source and inner errors, handles forgotten without `close()` (the garbage collector has
 *   to free them), channels abandoned with data in them;
 * - valid and invalid `reconfigure`s, forced `gc()`, and an ephemeral tracker shut down and
 *   replaced every couple of seconds with its streams still running.
 *
 * Checked all along: `audit()` finds no problem and `used ≥ 0` after every step and inside
 * every `collapse` event (mid-reclamation); `used ≤ max` once reclamation has settled (unless
 * no candidate was left); each stream delivers its values in order, without loss unless
 * it sheds (`drop-oldest`) or runs concurrently, and ends only in a way the contract allows; a
 * hand-written participant's `claimed` equals its own ledger; a shut-down tracker's streams all
 * end with `MemoryReclaimedError('tracker-shutdown')` or are refused with `TrackerShutdown`.
 * Checked at the end, after everything was closed or forgotten: `used` is 0 and no account or
 * participant record is left in any tracker; a sample of the streams' objects was garbage-
 * collected; no unhandled rejection, uncaught exception or RxJS unhandled error happened; the
 * heap is back near its start after `gc()`.
 *
 * Prints a summary and exits 1 on any violation.
 */
import {
  asapScheduler,
  asyncScheduler,
  config as rxjsConfig,
  map,
  NEVER,
  type Observable,
  of,
  type OperatorFunction,
  queueScheduler,
  type SchedulerAction,
  type SchedulerLike,
  Subject,
  Subscription,
  throwError,
  timer,
} from 'rxjs';
import {
  type Account,
  ConfigError,
  MemoryQuotaTracker,
  MemoryReclaimedError,
  MemquotaError,
  memquota,
  memquotaMap,
  memquotaQueue,
  type MemquotaChannel,
  type MemquotaConfig,
  type OnReclaim,
  type Participant,
  type Participation,
  type Reclaimed,
} from '../index.js';

// -----------------------------------------------------------------------------------------
// Command line

function parseArgs(argv: readonly string[]): { seconds: number; seed: number; quiet: boolean } {
  let seconds = 60;
  let seed = 1;
  let quiet = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    if (arg === '--seconds' || arg.startsWith('--seconds=')) {
      seconds = Number(value());
      if (!(seconds > 0 && seconds <= 3600)) usage('--seconds must be a number in (0, 3600]');
    } else if (arg === '--seed' || arg.startsWith('--seed=')) {
      const v = value();
      seed = v === 'random' ? Math.floor(Math.random() * 2 ** 32) : Number(v);
      if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) usage('--seed must be an integer in [0, 2**32) or "random"');
    } else if (arg === '--quiet') {
      quiet = true;
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  return { seconds, seed, quiet };
}

function usage(problem: string): never {
  console.error(`soak: ${problem}\nusage: node --expose-gc --import=tsx soak/soak.ts [--seconds N] [--seed N|random] [--quiet]`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) usage('run with node --expose-gc');

// -----------------------------------------------------------------------------------------
// Seeded randomness (mulberry32)

class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  /** Picks by weight: `[[weight, value], …]`. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of choices) total += w;
    let r = this.next() * total;
    for (const [w, v] of choices) {
      if ((r -= w) < 0) return v;
    }
    return choices[choices.length - 1]![1];
  }
}

const rng = new Random(args.seed);

// -----------------------------------------------------------------------------------------
// Violations and counters

const started = performance.now();
const elapsed = (): number => Math.round(performance.now() - started);
/** Violations grouped by their message with the numbers taken out: count and first example. */
const violations = new Map<string, { count: number; first: string }>();
let violationCount = 0;

function violation(message: string): void {
  violationCount++;
  const key = message.replace(/\d+/g, '#');
  const group = violations.get(key);
  if (group !== undefined) group.count++;
  else if (violations.size < 40) violations.set(key, { count: 1, first: `[${elapsed()} ms] ${message}` });
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

process.on('unhandledRejection', (reason) => violation(`unhandled rejection: ${describeError(reason)}`));
process.on('uncaughtException', (err) => violation(`uncaught exception: ${describeError(err)}`));
rxjsConfig.onUnhandledError = (err) => violation(`RxJS unhandled error: ${describeError(err)}`);
// Not a violation: RxJS's own sources do it (timer completes right after a next that made the
// subscriber unsubscribe). Counted for the summary.
let stoppedNotifications = 0;
rxjsConfig.onStoppedNotification = () => void stoppedNotifications++;

/** Counts by name. */
class Tally {
  readonly counts = new Map<string, number>();
  add(name: string, n = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + n);
  }
  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }
  total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }
  toString(): string {
    return [...this.counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  }
}

const opened = new Tally();
const endings = new Tally();
const faults = new Tally();
const participantErrors = new Tally();
const events = new Tally();
let valuesPushed = 0;
let valuesDelivered = 0;
let audits = 0;
let reconfigures = 0;
let reconfiguresRejected = 0;
let gcs = 0;
let shutdowns = 0;
let quiescentChecks = 0;
let steps = 0;

/** An error the soak injects on purpose; anything else reaching a consumer is a violation. */
class SoakFault extends Error {
  constructor(readonly fault: string) {
    super(`injected fault: ${fault}`);
    this.name = 'SoakFault';
  }
}

// -----------------------------------------------------------------------------------------
// Schedulers for lagging and stalled consumers

/** A delivery action run only when the soak pumps it. */
class PumpAction<T> extends Subscription implements SchedulerAction<T> {
  state: T | undefined;
  queued = false;
  constructor(
    private readonly owner: PumpScheduler,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
  ) {
    super();
  }
  schedule(state?: T): Subscription {
    if (this.closed) return this;
    this.state = state;
    if (!this.queued) {
      this.queued = true;
      this.owner.enqueue(this as PumpAction<unknown>);
    }
    return this;
  }
  run(): void {
    this.queued = false;
    if (!this.closed) this.work.call(this, this.state);
  }
}

/** A scheduler whose actions run only when `pump(n)` is called: a consumer that lags. */
class PumpScheduler implements SchedulerLike {
  private pending: PumpAction<unknown>[] = [];
  private spare: PumpAction<unknown>[] = [];
  now(): number {
    return performance.now();
  }
  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, _delay?: number, state?: T): Subscription {
    const action = new PumpAction<T>(this, work);
    action.schedule(state);
    return action;
  }
  enqueue(action: PumpAction<unknown>): void {
    this.pending.push(action);
  }
  /** Runs up to `budget` pending actions (those rescheduled meanwhile wait for the next pump). */
  pump(budget: number): void {
    const batch = this.pending;
    this.pending = this.spare;
    let i = 0;
    for (; i < batch.length && budget > 0; i++) {
      if (batch[i]!.closed) continue;
      budget--;
      batch[i]!.run();
    }
    for (; i < batch.length; i++) if (!batch[i]!.closed) this.pending.push(batch[i]!);
    batch.length = 0;
    this.spare = batch;
  }
  clear(): void {
    this.pending.length = 0;
    this.spare.length = 0;
  }
}

/** A scheduler that never runs anything: the consumer never gets a value. */
const neverScheduler: SchedulerLike = {
  now: () => performance.now(),
  schedule: () => new Subscription(),
};

const pump = new PumpScheduler();

// -----------------------------------------------------------------------------------------
// Trackers

const KiB = 1024;
const MiB = 1024 * KiB;

interface Slot {
  readonly name: string;
  readonly tracker: MemoryQuotaTracker;
  readonly ephemeral: boolean;
  readonly servers: Account[];
  readonly connections: Account[];
  readonly streams: Set<Stream>;
  peak: number;
  peakMax: number;
  claims: number;
  lastOutcome: string;
  readonly subscriptions: Subscription;
}

const slots: Slot[] = [];
let ephemeralCount = 0;
/** Totals of trackers that were shut down, folded into the summary. */
const retired = { claims: 0, reclaimRuns: 0, victims: 0, accountsCollapsed: 0, bytesReclaimed: 0, peakRatio: 0 };

function checkBooks(slot: Slot, where: string): void {
  audits++;
  const report = slot.tracker.audit();
  if (report.problems.length > 0) violation(`${slot.name} ${where}: audit: ${report.problems.join('; ')}`);
  if (!(slot.tracker.used >= 0)) violation(`${slot.name} ${where}: used is ${slot.tracker.used}`);
  if (report.claimed !== slot.tracker.used) violation(`${slot.name} ${where}: used ${slot.tracker.used} but claims add up to ${report.claimed}`);
}

function makeSlot(name: string, scheduler: SchedulerLike | undefined, victimPolicy: 'oldest' | 'largest', ephemeral: boolean): Slot {
  const tracker = MemoryQuotaTracker.create({ max: 2 * MiB }, scheduler === undefined ? { victimPolicy } : { scheduler, victimPolicy });
  const slot: Slot = {
    name,
    tracker,
    ephemeral,
    servers: [],
    connections: [],
    streams: new Set(),
    peak: 0,
    peakMax: tracker.max,
    claims: 0,
    lastOutcome: 'none',
    subscriptions: new Subscription(),
  };
  let previous = 0;
  slot.subscriptions.add(
    tracker.usage$.subscribe((u) => {
      if (u.used > previous) slot.claims++;
      previous = u.used;
      if (u.used / u.max > slot.peak / slot.peakMax) {
        slot.peak = u.used;
        slot.peakMax = u.max;
      }
    }),
  );
  slot.subscriptions.add(
    tracker.events$.subscribe((e) => {
      events.add(e.type);
      if (e.type === 'collapse') checkBooks(slot, `inside a collapse event (${e.reason})`);
      else if (e.type === 'reclaim-end') slot.lastOutcome = e.outcome;
      else if (e.type === 'participant-error') participantErrors.add(e.fault);
    }),
  );
  for (let i = 0; i < 3; i++) slot.servers.push(tracker.newAccount());
  return slot;
}

/** A connection account: a child of a server, sometimes of two. */
function openConnection(slot: Slot): Account {
  const conn = rng.pick(slot.servers).newChild();
  if (rng.chance(0.2)) {
    const other = rng.pick(slot.servers);
    try {
      conn.addParent(other);
    } catch (err) {
      // the same server twice: the documented refusal
      if (!(err instanceof MemquotaError && err.kind === 'ChildAccountAlreadyExists')) violation(`addParent: ${describeError(err)}`);
    }
  }
  slot.connections.push(conn);
  return conn;
}

/** An open connection of the slot (closed or reclaimed ones are dropped on the way). */
function connection(slot: Slot): Account {
  for (;;) {
    if (slot.connections.length === 0) return openConnection(slot);
    const i = rng.int(slot.connections.length);
    const conn = slot.connections[i]!;
    if (!conn.closed) return conn;
    conn.close();
    slot.connections[i] = slot.connections[slot.connections.length - 1]!;
    slot.connections.pop();
  }
}

// -----------------------------------------------------------------------------------------
// Streams

interface Value {
  readonly seq: number;
  readonly payload: string;
}

const TEXT = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2000);

function makeValue(seq: number): Value {
  const length = rng.weighted([
    [70, rng.between(0, 200)],
    [25, rng.between(200, 4000)],
    [5, rng.between(4000, 60000)],
  ]);
  const start = rng.int(TEXT.length - length);
  return { seq, payload: TEXT.slice(start, start + length) };
}

/** WeakRefs to a sample of the streams' objects: all must be collectable at the end. */
const sample: { kind: string; ref: WeakRef<object> }[] = [];
function sampled(kind: string, object: object): void {
  if (rng.chance(0.05)) sample.push({ kind, ref: new WeakRef(object) });
}

type Order = 'consecutive' | 'increasing' | 'any';

abstract class Stream {
  private static nextId = 1;
  readonly id = Stream.nextId++;
  ended = false;
  /** Set when the soak itself ends the stream: what it did. */
  closedBy: 'unsubscribe' | 'complete' | 'error' | 'leave' | null = null;
  pushed = 0;
  delivered = 0;
  private expected = 0;

  constructor(
    readonly kind: string,
    readonly slot: Slot,
    readonly order: Order,
  ) {
    slot.streams.add(this);
    opened.add(kind);
  }

  abstract push(): void;
  abstract close(): void;
  /** Drops the stream without closing it (the garbage collector must free what it held). */
  forget(): void {
    this.finish(`${this.kind}: forgotten`);
  }
  /** Per-step work (hand-written participants consume, channels poll). */
  step(): void {}

  protected nextValue(): Value {
    valuesPushed++;
    return makeValue(this.pushed++);
  }

  /** A value reached the consumer: check that it is allowed to, and its order. */
  protected received(value: Value): void {
    valuesDelivered++;
    this.delivered++;
    if (this.ended) violation(`${this.kind} #${this.id}: value ${value.seq} after the end`);
    if (value.seq >= this.pushed) violation(`${this.kind} #${this.id}: value ${value.seq} was never pushed`);
    if (this.order === 'consecutive' && value.seq !== this.expected) {
      violation(`${this.kind} #${this.id}: got value ${value.seq}, expected ${this.expected} (lost or reordered)`);
    } else if (this.order === 'increasing' && value.seq < this.expected) {
      violation(`${this.kind} #${this.id}: got value ${value.seq} after ${this.expected - 1} (reordered)`);
    }
    this.expected = value.seq + 1;
  }

  /** The consumer saw an error. */
  protected failed(err: unknown): void {
    if (err instanceof MemoryReclaimedError) {
      this.finish(`${this.kind}: MemoryReclaimedError(${err.reason})`);
      if (err.reason === 'tracker-shutdown' && !this.slot.ephemeral) violation(`${this.kind} #${this.id}: tracker-shutdown on a tracker never shut down`);
    } else if (err instanceof SoakFault) {
      this.finish(`${this.kind}: ${err.fault}`);
    } else if (err instanceof MemquotaError && err.kind === 'TrackerShutdown' && this.slot.ephemeral) {
      this.finish(`${this.kind}: refused, TrackerShutdown`);
    } else {
      violation(`${this.kind} #${this.id}: unexpected error ${describeError(err)}`);
      this.finish(`${this.kind}: unexpected error`);
    }
  }

  /** The consumer saw completion. */
  protected completed(onReclaim: OnReclaim | undefined): void {
    if (this.closedBy === 'complete') this.finish(`${this.kind}: completed`);
    else if (onReclaim === 'complete') this.finish(`${this.kind}: completed on reclamation`);
    else {
      violation(`${this.kind} #${this.id}: completed though its source did not (closedBy ${this.closedBy})`);
      this.finish(`${this.kind}: unexpected completion`);
    }
  }

  finish(how: string): void {
    if (this.ended) return;
    this.ended = true;
    // Summarised by outcome across kinds ("memquota: unsubscribed" → "unsubscribed").
    endings.add(how.slice(how.indexOf(': ') + 2).replace(/^torn down \(.*\)$/, 'participant torn down by the tracker'));
    this.slot.streams.delete(this);
  }
}

function pickOnReclaim(): OnReclaim {
  return rng.weighted<OnReclaim>([
    [70, 'error'],
    [15, 'complete'],
    [15, 'drop-oldest'],
  ]);
}

/** The cost option: the default estimate, a simple one, or one that throws at some value. */
function pickCost(kind: string): ((v: Value) => number) | undefined {
  return rng.weighted<(() => ((v: Value) => number) | undefined)>([
    [60, () => undefined],
    [32, () => (v: Value) => 32 + 2 * v.payload.length],
    [
      8,
      () => {
        const at = rng.between(0, 40);
        return (v: Value) => {
          if (v.seq === at) {
            faults.add(`${kind}: cost throws`);
            throw new SoakFault('cost throws');
          }
          return 32 + v.payload.length;
        };
      },
    ],
  ])();
}

/** The account argument: the connection itself, or a factory of per-subscription children. */
function pickAccount(slot: Slot): Account | (() => Account) {
  const conn = connection(slot);
  return rng.chance(0.5) ? conn : () => conn.newChild();
}

type Consumer = 'direct' | 'asap' | 'async' | 'pumped' | 'stalled';
function schedulerOf(consumer: Consumer): SchedulerLike | undefined {
  switch (consumer) {
    case 'direct':
      return undefined;
    case 'asap':
      return asapScheduler;
    case 'async':
      return asyncScheduler;
    case 'pumped':
      return pump;
    case 'stalled':
      return neverScheduler;
  }
}
function pickConsumer(): Consumer {
  return rng.weighted<Consumer>([
    [20, 'direct'],
    [25, 'asap'],
    [15, 'async'],
    [25, 'pumped'],
    [15, 'stalled'],
  ]);
}

/** An Observable pipeline through memquota (sometimes two in a row). */
class MemquotaStream extends Stream {
  private readonly source = new Subject<Value>();
  private readonly subscription: Subscription;
  private readonly onReclaim: OnReclaim;

  constructor(slot: Slot) {
    const onReclaim = pickOnReclaim();
    const chained = rng.chance(0.15);
    super(chained ? 'memquota×2' : 'memquota', slot, onReclaim === 'drop-oldest' ? 'increasing' : 'consecutive');
    this.onReclaim = onReclaim;
    const consumer = pickConsumer();
    const scheduler = schedulerOf(consumer);
    const cost = pickCost(this.kind);
    let output: Observable<Value>;
    try {
      output = this.source.pipe(memquota<Value>(pickAccount(slot), { scheduler, onReclaim, cost }));
      if (chained) {
        const second = schedulerOf(pickConsumer());
        output = output.pipe(memquota<Value>(pickAccount(slot), { scheduler: second, onReclaim }));
      }
    } catch (err) {
      violation(`memquota: creating the operator threw ${describeError(err)}`);
      throw err;
    }
    sampled(this.kind, this.source);
    this.subscription = output.subscribe({
      next: (v) => this.received(v),
      error: (err: unknown) => this.failed(err),
      complete: () => this.completed(this.onReclaim),
    });
  }

  push(): void {
    if (this.closedBy === null) this.source.next(this.nextValue());
  }

  close(): void {
    if (this.ended || this.closedBy !== null) return;
    const how = rng.weighted<'unsubscribe' | 'complete' | 'error'>([
      [55, 'unsubscribe'],
      [35, 'complete'],
      [10, 'error'],
    ]);
    this.closedBy = how;
    if (how === 'unsubscribe') {
      this.subscription.unsubscribe();
      this.finish(`${this.kind}: unsubscribed`);
    } else if (how === 'complete') {
      this.source.complete();
    } else {
      faults.add(`${this.kind}: source errors`);
      this.source.error(new SoakFault('source errors'));
    }
  }

  /** The end of the run: whatever state it is in, let go. */
  release(): void {
    this.subscription.unsubscribe();
    this.finish(`${this.kind}: unsubscribed at the end`);
  }
}

/** An Observable pipeline through memquotaMap, with inners that finish soon, at once or never. */
class MemquotaMapStream extends Stream {
  private readonly source = new Subject<Value>();
  private readonly subscription: Subscription;

  constructor(slot: Slot) {
    const concurrency = rng.weighted([
      [40, 1],
      [25, 2],
      [20, 4],
      [15, Infinity],
    ]);
    const chained = rng.chance(0.15);
    super(chained ? 'memquotaMap→memquota' : 'memquotaMap', slot, concurrency === 1 ? 'consecutive' : 'any');
    const inner = rng.weighted<'timer' | 'sync' | 'mixed'>([
      [45, 'timer'],
      [20, 'sync'],
      [35, 'mixed'],
    ]);
    const kind = this.kind;
    const project = (v: Value): Observable<Value> => {
      const r = rng.next();
      if (inner === 'sync' || (inner === 'mixed' && r < 0.3)) return of(v);
      if (inner === 'mixed' && r > 0.97) return NEVER; // a stalled inner: its value stays claimed
      if (inner === 'mixed' && r > 0.965) {
        faults.add(`${kind}: inner errors`);
        return throwError(() => new SoakFault('inner errors'));
      }
      return timer(rng.between(0, 8)).pipe(map(() => v));
    };
    let output: Observable<Value>;
    try {
      output = this.source.pipe(memquotaMap(pickAccount(slot), project, { concurrency, cost: pickCost(this.kind) }) as OperatorFunction<Value, Value>);
      if (chained) output = output.pipe(memquota<Value>(pickAccount(slot), { scheduler: schedulerOf(pickConsumer()) }));
    } catch (err) {
      violation(`memquotaMap: creating the operator threw ${describeError(err)}`);
      throw err;
    }
    sampled(this.kind, this.source);
    this.subscription = output.subscribe({
      next: (v) => this.received(v),
      error: (err: unknown) => this.failed(err),
      complete: () => this.completed(undefined),
    });
  }

  push(): void {
    if (this.closedBy === null) this.source.next(this.nextValue());
  }

  close(): void {
    if (this.ended || this.closedBy !== null) return;
    const how = rng.weighted<'unsubscribe' | 'complete'>([
      [60, 'unsubscribe'],
      [40, 'complete'],
    ]);
    this.closedBy = how;
    if (how === 'unsubscribe') {
      this.subscription.unsubscribe();
      this.finish(`${this.kind}: unsubscribed`);
    } else {
      this.source.complete();
    }
  }

  release(): void {
    this.subscription.unsubscribe();
    this.finish(`${this.kind}: unsubscribed at the end`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A memquotaQueue channel: pushed by the soak, read by a subscriber, a slow `for await`, or nobody. */
class QueueStream extends Stream {
  private channel: MemquotaChannel<Value> | null;
  private subscription: Subscription | null = null;
  private readonly reader: 'observable' | 'for-await' | 'late' | 'nobody';
  private readonly onReclaim: OnReclaim;
  /** Tells a `for await` reader to leave at its next value. */
  private leaving = false;
  private stepsUntilRead: number;

  constructor(slot: Slot) {
    const onReclaim = pickOnReclaim();
    super('memquotaQueue', slot, onReclaim === 'drop-oldest' ? 'increasing' : 'consecutive');
    this.onReclaim = onReclaim;
    this.reader = rng.weighted<QueueStream['reader']>([
      [30, 'observable'],
      [35, 'for-await'],
      [15, 'late'],
      [20, 'nobody'],
    ]);
    this.stepsUntilRead = this.reader === 'late' ? rng.between(5, 200) : 0;
    this.channel = memquotaQueue<Value>(pickAccount(slot), { onReclaim, cost: pickCost(this.kind) });
    sampled(this.kind, this.channel);
    if (this.reader === 'observable') this.subscribe();
    else if (this.reader === 'for-await') void this.readSlowly(this.channel);
  }

  private subscribe(): void {
    this.subscription = this.channel!.receiver.subscribe({
      next: (v) => this.received(v),
      error: (err: unknown) => this.failed(err),
      complete: () => this.completed(this.onReclaim),
    });
    // A second consumer at the same time is refused with a TypeError, and changes nothing.
    if (rng.chance(0.05) && !this.ended) {
      let refused: unknown;
      this.channel!.receiver.subscribe({ error: (err: unknown) => (refused = err) }).unsubscribe();
      if (!(refused instanceof TypeError)) violation(`memquotaQueue #${this.id}: a second consumer was not refused (${describeError(refused)})`);
    }
  }

  private async readSlowly(channel: MemquotaChannel<Value>): Promise<void> {
    const pace = rng.weighted<'turn' | 'ms' | 'burst'>([
      [40, 'turn'],
      [30, 'ms'],
      [30, 'burst'],
    ]);
    try {
      let n = 0;
      for await (const v of channel.receiver) {
        if (this.leaving) break;
        this.received(v);
        if (pace === 'turn') await turn();
        else if (pace === 'ms') await sleep(rng.between(0, 3));
        else if (++n % 20 === 0) await sleep(5);
      }
      if (this.leaving) this.finish(`${this.kind}: reader left`);
      else this.completed(this.onReclaim);
    } catch (err) {
      this.failed(err);
    }
  }

  push(): void {
    if (this.closedBy === null && this.channel !== null) {
      const wasClosed = this.channel.sender.closed;
      this.channel.sender.next(this.nextValue());
      if (wasClosed) this.pushed--; // dropped by a closed sender, never delivered
    }
  }

  /** Whether the sender takes no more values (the channel ended or was torn down). */
  senderClosed(): boolean {
    return this.channel === null || this.channel.sender.closed;
  }

  override step(): void {
    if (this.ended || this.channel === null) return;
    if (this.reader === 'late' && this.subscription === null && --this.stepsUntilRead <= 0) this.subscribe();
    // Nobody reads: the end of the channel (reclaimed, closed, a throwing cost) shows first on
    // the sender; a consumer that comes then is told how it ended.
    if (this.subscription === null && this.reader !== 'for-await' && this.channel.sender.closed && this.closedBy === null) {
      this.subscribe();
    }
  }

  close(): void {
    if (this.ended || this.closedBy !== null || this.channel === null) return;
    const reading = this.subscription !== null || this.reader === 'for-await';
    const how = rng.weighted<'complete' | 'error' | 'leave'>([
      [45, reading ? 'complete' : 'leave'],
      [10, reading ? 'error' : 'leave'],
      [45, 'leave'],
    ]);
    this.closedBy = how;
    if (how === 'complete') this.channel.sender.complete();
    else if (how === 'error') {
      faults.add(`${this.kind}: sender errors`);
      this.channel.sender.error(new SoakFault('sender errors'));
    } else this.leave();
  }

  /** The consumer leaves (unsubscribes, breaks out of its loop) or, if there is none, the producer lets go. */
  private leave(): void {
    if (this.subscription !== null) {
      this.subscription.unsubscribe();
      this.finish(`${this.kind}: unsubscribed`);
    } else if (this.reader === 'for-await') {
      // Wakes a reader waiting on an empty channel; one busy with values leaves at the next.
      this.leaving = true;
      this.channel!.sender.complete();
    } else {
      // Nobody ever read: subscribe and leave at once (what a consumer that gives up does).
      this.channel!.receiver.subscribe({ error: () => undefined }).unsubscribe();
      this.finish(`${this.kind}: left unread`);
    }
  }

  override forget(): void {
    // An abandoned channel with values in it: only the garbage collector can free them.
    faults.add('memquotaQueue: abandoned with data');
    this.subscription?.unsubscribe();
    this.leaving = true;
    this.channel = null;
    super.forget();
  }

  release(): void {
    if (this.channel === null) return this.finish(`${this.kind}: dropped`);
    if (this.subscription !== null) this.subscription.unsubscribe();
    else if (this.reader === 'for-await') {
      this.leaving = true;
      this.channel.sender.complete();
    } else this.channel.receiver.subscribe({ error: () => undefined }).unsubscribe();
    this.finish(`${this.kind}: let go at the end`);
  }
}

type ParticipantFaultMode =
  | 'none'
  | 'partial'
  | 'async'
  | 'reentrant'
  | 'getOldest-throws'
  | 'reclaim-throws'
  | 'reclaim-rejects'
  | 'reclaim-invalid'
  | 'lies-no-data'
  | 'over-releases';

/** A hand-written participant: a queue of chunks, consumed at some pace, with an injected fault. */
class ParticipantStream extends Stream implements Participant {
  participation: Participation;
  private readonly times: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  /** What this participant has claimed and not released, by its own count. */
  held = 0;
  private readonly mode: ParticipantFaultMode;
  private readonly rate: number;
  private armed = false;
  private readonly account: Account;
  private readonly ownsAccount: boolean;

  constructor(slot: Slot) {
    super('participant', slot, 'any');
    this.mode = rng.weighted<ParticipantFaultMode>([
      [40, 'none'],
      [12, 'partial'],
      [10, 'async'],
      [8, 'reentrant'],
      [6, 'getOldest-throws'],
      [6, 'reclaim-throws'],
      [5, 'reclaim-rejects'],
      [4, 'reclaim-invalid'],
      [5, 'lies-no-data'],
      [4, 'over-releases'],
    ]);
    this.rate = rng.weighted([
      [30, 8],
      [30, 1],
      [40, 0],
    ]);
    const conn = connection(slot);
    this.ownsAccount = rng.chance(0.4);
    this.account = this.ownsAccount ? conn.newChild() : conn;
    if (rng.chance(0.3)) {
      this.participation = null as unknown as Participation; // set by make, before anything else
      try {
        const self = this.account.registerParticipantWith((p) => {
          this.participation = p;
          this.add(); // claims inside the constructor: past max, a synchronous scheduler reclaims at once
          return this;
        });
        if (self !== this) violation('registerParticipantWith returned another object');
      } catch (err) {
        if (!(err instanceof MemquotaError && err.kind === 'ParticipantShutdown')) throw err;
        if (!this.participation.closed) violation(`participant #${this.id}: refused, yet its participation is live`);
        this.finish('participant: reclaimed while being constructed');
        if (this.ownsAccount) this.account.close();
      }
    } else {
      this.participation = this.account.registerParticipant(this);
    }
    sampled('participant', this);
  }

  private add(): void {
    const bytes = rng.weighted([
      [70, rng.between(1, 2000)],
      [30, rng.between(2000, 40000)],
    ]);
    this.participation.claim(bytes);
    this.held += bytes;
    this.times.push(this.slot.tracker.now());
    this.sizes.push(bytes);
    valuesPushed++;
    this.pushed++;
  }

  private releaseOldest(): void {
    const bytes = this.sizes[this.head]!;
    this.participation.release(bytes);
    this.held -= bytes;
    this.sizes[this.head] = 0;
    this.head++;
    valuesDelivered++;
    this.delivered++;
    if (this.head > 64 && this.head * 2 > this.times.length) {
      this.times.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }

  private get queued(): number {
    return this.times.length - this.head;
  }

  private releaseAll(): void {
    while (this.queued > 0) this.releaseOldest();
  }

  push(): void {
    if (this.ended) return;
    if (this.participation.closed) return this.tornDown();
    try {
      this.add();
    } catch (err) {
      violation(`participant #${this.id}: claim on a live participation threw ${describeError(err)}`);
    }
    if (!this.armed && rng.chance(0.05)) this.armed = true;
  }

  override step(): void {
    if (this.ended) return;
    if (this.participation.closed) return this.tornDown();
    for (let i = 0; i < this.rate && this.queued > 0; i++) this.releaseOldest();
    if (this.mode === 'over-releases' && this.armed && rng.chance(0.02)) {
      faults.add('participant: over-releases');
      this.participation.release(this.held + 100);
      this.held = 0;
      this.head = this.times.length;
    }
    if (this.participation.claimed !== this.held) {
      violation(`participant #${this.id}: participation.claimed ${this.participation.claimed} but it holds ${this.held}`);
      this.held = this.participation.claimed;
    }
  }

  private tornDown(): void {
    this.finish(`participant: torn down (${this.mode})`);
    if (this.ownsAccount) this.account.close();
  }

  getOldest(): number | undefined {
    if (this.armed && this.mode === 'getOldest-throws') {
      faults.add('participant: getOldest throws');
      throw new SoakFault('getOldest throws');
    }
    if (this.armed && this.mode === 'lies-no-data') return undefined;
    return this.queued > 0 ? this.times[this.head] : undefined;
  }

  reclaim(): Reclaimed | PromiseLike<Reclaimed> {
    if (this.armed) {
      switch (this.mode) {
        case 'reclaim-throws':
          faults.add('participant: reclaim throws');
          throw new SoakFault('reclaim throws');
        case 'reclaim-rejects':
          faults.add('participant: reclaim rejects');
          return Promise.reject(new SoakFault('reclaim rejects'));
        case 'reclaim-invalid':
          faults.add('participant: reclaim answers nonsense');
          return 'maybe' as Reclaimed;
        default:
          break;
      }
    }
    switch (this.mode) {
      case 'partial': {
        const half = Math.ceil(this.queued / 2);
        for (let i = 0; i < half; i++) this.releaseOldest();
        return 'partial';
      }
      case 'async':
        return new Promise<Reclaimed>((resolve) =>
          setTimeout(() => {
            this.releaseAll();
            resolve('collapsing');
          }, rng.between(0, 4)),
        );
      case 'reentrant': {
        // Allowed inside reclaim(): claim on another participant, open and close an account.
        const other = [...this.slot.streams].find((s): s is ParticipantStream => s instanceof ParticipantStream && s !== this && !s.participation.closed);
        if (other !== undefined) other.push();
        this.slot.tracker.newAccount().close();
        this.releaseAll();
        return 'collapsing';
      }
      default:
        this.releaseAll();
        return 'collapsing';
    }
  }

  close(): void {
    if (this.ended) return;
    this.closedBy = 'unsubscribe';
    if (rng.chance(0.3)) this.participation.destroy();
    else this.participation.close();
    this.finish('participant: closed');
    if (this.ownsAccount) this.account.close();
  }

  override forget(): void {
    faults.add('participant: forgotten without close');
    super.forget();
  }

  release(): void {
    this.participation.close();
    this.finish('participant: closed at the end');
    if (this.ownsAccount) this.account.close();
  }
}

type AnyStream = MemquotaStream | MemquotaMapStream | QueueStream | ParticipantStream;

function openStream(slot: Slot): void {
  const make = rng.weighted<(s: Slot) => AnyStream>([
    [30, (s) => new MemquotaStream(s)],
    [25, (s) => new MemquotaMapStream(s)],
    [25, (s) => new QueueStream(s)],
    [20, (s) => new ParticipantStream(s)],
  ]);
  make(slot);
}

// -----------------------------------------------------------------------------------------
// The driver

function liveStreams(): Stream[] {
  const all: Stream[] = [];
  for (const slot of slots) for (const s of slot.streams) all.push(s);
  return all;
}

const configs: readonly (() => MemquotaConfig)[] = [
  () => ({ max: rng.between(256 * KiB, 4 * MiB) }),
  () => {
    const max = rng.between(256 * KiB, 4 * MiB);
    return { max, lowWater: Math.floor(max * (0.3 + rng.next() * 0.6)) };
  },
  () => ({ max: 2 * MiB }),
];
const invalidConfigs: readonly MemquotaConfig[] = [
  { max: -1 },
  { max: 1000, lowWater: 990 },
  { max: 1.5 },
  { lowWater: 10 },
  { max: 1000, softMax: 2000 },
];

function reconfigure(slot: Slot): void {
  const { max, lowWater, softMax } = slot.tracker;
  if (rng.chance(0.1)) {
    const bad = rng.pick(invalidConfigs);
    try {
      slot.tracker.reconfigure(bad);
      violation(`reconfigure(${JSON.stringify(bad)}) was accepted`);
    } catch (err) {
      reconfiguresRejected++;
      if (!(err instanceof ConfigError)) violation(`reconfigure(${JSON.stringify(bad)}) threw ${describeError(err)}, not ConfigError`);
      if (slot.tracker.max !== max || slot.tracker.lowWater !== lowWater || slot.tracker.softMax !== softMax) {
        violation(`a rejected reconfigure changed the config of ${slot.name}`);
      }
    }
    return;
  }
  reconfigures++;
  slot.tracker.reconfigure(rng.pick(configs)());
}

/** Shuts the ephemeral tracker down with its streams running and checks they all end. */
async function rotateEphemeral(): Promise<void> {
  const index = slots.findIndex((s) => s.ephemeral);
  const old = slots[index]!;
  const streams = [...old.streams];
  const stale = old.connections.find((c) => !c.closed) ?? old.servers[0]!;
  old.tracker.shutdown();
  shutdowns++;
  slots[index] = makeSlot(`C${++ephemeralCount}`, undefined, 'oldest', true);
  if (old.tracker.used !== 0) violation(`${old.name}: used ${old.tracker.used} after shutdown`);
  const report = old.tracker.audit();
  if (report.accounts !== 0 || report.participants !== 0) violation(`${old.name}: ${report.accounts} accounts, ${report.participants} participants after shutdown`);
  // A new stream on the shut-down tracker is refused.
  let refusal: unknown;
  of(1)
    .pipe(memquota(stale))
    .subscribe({ error: (err: unknown) => (refusal = err) });
  if (!(refusal instanceof MemquotaError && refusal.kind === 'TrackerShutdown')) violation(`memquota on a shut-down tracker: ${describeError(refusal)}`);
  try {
    memquotaQueue(stale);
    violation('memquotaQueue on a shut-down tracker was accepted');
  } catch (err) {
    if (!(err instanceof MemquotaError && err.kind === 'TrackerShutdown')) violation(`memquotaQueue on a shut-down tracker: ${describeError(err)}`);
  }
  // Every stream has been told, synchronously; a channel's reader learns it at its next pull.
  for (const s of streams) {
    s.step();
    if (s.ended) continue;
    if (s instanceof QueueStream && s.senderClosed()) continue;
    violation(`${s.kind} #${s.id} on ${old.name} still running after shutdown`);
    s.finish(`${s.kind}: stuck after shutdown`);
  }
  old.subscriptions.unsubscribe();
  retired.claims += old.claims;
  const st = old.tracker.stats;
  retired.reclaimRuns += st.reclaimRuns;
  retired.victims += st.victims;
  retired.accountsCollapsed += st.accountsCollapsed;
  retired.bytesReclaimed += st.bytesReclaimed;
  retired.peakRatio = Math.max(retired.peakRatio, old.peak / old.peakMax);
}

/** After reclamation settles, with no claim in between: used ≤ max unless no candidate was left. */
async function quiescentCheck(): Promise<void> {
  quiescentChecks++;
  await Promise.all(slots.map((s) => s.tracker.settled()));
  for (const slot of slots) {
    checkBooks(slot, 'settled');
    if (slot.tracker.used > slot.tracker.max && slot.lastOutcome !== 'no-candidate') {
      violation(`${slot.name}: used ${slot.tracker.used} > max ${slot.tracker.max} after reclamation settled (last run: ${slot.lastOutcome})`);
    }
  }
}

async function drive(deadline: number): Promise<void> {
  let nextReconfigure = performance.now() + 300;
  let nextGc = performance.now() + 1000;
  let nextRotate = performance.now() + 2000;
  let nextQuiet = performance.now() + 500;
  let target = 200;
  while (performance.now() < deadline) {
    steps++;
    const live = liveStreams();
    if (steps % 500 === 0) target = rng.between(50, 500);
    // open
    const opens = live.length < target ? rng.between(2, 12) : rng.between(0, 2);
    for (let i = 0; i < opens; i++) openStream(rng.pick(slots));
    // push
    const all = liveStreams();
    for (let i = 0; i < Math.min(all.length, 40); i++) {
      const s = rng.pick(all);
      const n = rng.weighted([
        [60, 1],
        [30, 4],
        [10, 16],
      ]);
      for (let k = 0; k < n && !s.ended; k++) s.push();
    }
    // close, forget
    const closes = live.length > target ? rng.between(2, 12) : rng.between(0, 3);
    for (let i = 0; i < closes && all.length > 0; i++) rng.pick(all).close();
    if (rng.chance(0.03) && all.length > 0) {
      const s = rng.pick(all);
      if (s instanceof ParticipantStream || s instanceof QueueStream) s.forget();
    }
    // accounts come and go
    for (const slot of slots) {
      if (slot.connections.length < 30 && rng.chance(0.3)) openConnection(slot);
      if (slot.connections.length > 3 && rng.chance(0.03)) {
        const i = rng.int(slot.connections.length);
        const conn = slot.connections[i]!;
        slot.connections[i] = slot.connections[slot.connections.length - 1]!;
        slot.connections.pop();
        if (rng.chance(0.2)) faults.add('connection: forgotten without close');
        else conn.close();
      }
    }
    // consumers
    pump.pump(rng.between(0, 60));
    for (const s of liveStreams()) s.step();
    for (const slot of slots) checkBooks(slot, 'after a step');

    const now = performance.now();
    if (now >= nextReconfigure) {
      nextReconfigure = now + rng.between(150, 450);
      reconfigure(rng.pick(slots));
    }
    if (now >= nextGc) {
      nextGc = now + 1000;
      gc!();
      gcs++;
    }
    if (now >= nextRotate) {
      nextRotate = now + 2000;
      await rotateEphemeral();
    }
    if (now >= nextQuiet) {
      nextQuiet = now + 500;
      await quiescentCheck();
    }
    if (steps % 8 === 0) await sleep(1);
    else await turn();
  }
}

/** Closes everything still open, then lets the garbage collector take what was forgotten. */
async function windDown(): Promise<{ rounds: number }> {
  for (const s of liveStreams()) (s as AnyStream).release();
  pump.clear();
  for (const slot of slots) {
    for (const conn of slot.connections) conn.close();
    slot.connections.length = 0;
  }
  // Readers of channels that were told to leave need a few turns to see it.
  for (let i = 0; i < 20; i++) await turn();
  await sleep(20);
  for (const slot of slots) {
    for (const server of slot.servers) server.close();
    slot.servers.length = 0;
  }
  let rounds = 0;
  const clean = (): boolean => slots.every((s) => {
    const r = s.tracker.audit();
    return r.accounts === 0 && r.participants === 0 && s.tracker.used === 0;
  });
  // Forgotten handles and abandoned channels are freed by FinalizationRegistry callbacks,
  // which run in tasks after a collection: a few rounds suffice when nothing holds them.
  while (!clean() && rounds < 40) {
    rounds++;
    await Promise.all(slots.map((s) => s.tracker.settled()));
    gc!();
    await turn();
    if (rounds % 10 === 0) await sleep(5);
  }
  return { rounds };
}

function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}

async function settleHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await turn();
  }
  return heapUsed();
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  slots.push(makeSlot('A', undefined, 'oldest', false));
  slots.push(makeSlot('B', queueScheduler, 'largest', false));
  slots.push(makeSlot(`C${++ephemeralCount}`, undefined, 'oldest', true));
  const heapStart = await settleHeap();
  const deadline = performance.now() + args.seconds * 1000;
  console.log(`soak: seed ${args.seed}, ${args.seconds} s (replay with --seed ${args.seed})`);

  await drive(deadline);
  const driveEnd = elapsed();
  await quiescentCheck();
  const { rounds } = await windDown();

  for (const slot of slots) {
    checkBooks(slot, 'at the end');
    const report = slot.tracker.audit();
    if (slot.tracker.used !== 0) violation(`${slot.name}: used ${slot.tracker.used} at the end, not 0`);
    if (report.accounts !== 0) violation(`${slot.name}: ${report.accounts} account records left at the end`);
    if (report.participants !== 0) violation(`${slot.name}: ${report.participants} participant records left at the end`);
    const st = slot.tracker.stats;
    if (st.accounts !== 0 || st.participants !== 0) violation(`${slot.name}: stats say ${st.accounts} accounts, ${st.participants} participants at the end`);
  }
  const still = liveStreams();
  if (still.length > 0) violation(`${still.length} streams still registered at the end`);

  const heapEnd = await settleHeap();
  const alive = sample.filter((s) => s.ref.deref() !== undefined);
  if (alive.length > 0) {
    const kinds = new Tally();
    for (const s of alive) kinds.add(s.kind);
    violation(`${alive.length} of ${sample.length} sampled stream objects not collected: ${kinds}`);
  }
  const growth = heapEnd - heapStart;
  // What may stay: compiled code, the trackers and the soak's own tallies. Observed growth is
  // 2-3 MiB for 10-60 s runs; a leak of the streams' objects or values would be far more.
  const tolerance = 8 * MiB;
  if (growth > tolerance) violation(`heap grew by ${mib(growth)} (start ${mib(heapStart)}, end ${mib(heapEnd)}; tolerance ${mib(tolerance)})`);

  // Summary
  const stats = slots.map((s) => s.tracker.stats);
  const sum = (f: (st: (typeof stats)[number]) => number): number => stats.reduce((a, st) => a + f(st), 0);
  const claims = slots.reduce((a, s) => a + s.claims, retired.claims);
  const peaks = slots.map((s) => `${s.name} ${mib(s.peak)} of max ${mib(s.peakMax)} (${Math.round((100 * s.peak) / s.peakMax)} %)`);
  const line = (label: string, text: string): void => console.log(`  ${label.padEnd(13)} ${text}`);
  console.log(`soak summary (seed ${args.seed}; drove ${(driveEnd / 1000).toFixed(1)} s, ${steps} steps, total ${(elapsed() / 1000).toFixed(1)} s)`);
  line('streams', `${opened.total()} opened: ${opened}`);
  line('endings', `${endings}`);
  line('values', `${valuesPushed} pushed, ${valuesDelivered} delivered`);
  line('claims', `${claims} (book increases seen on usage$)`);
  line('peak used', `${peaks.join('; ')}; retired ephemeral trackers up to ${Math.round(100 * retired.peakRatio)} %`);
  line(
    'reclamation',
    `${sum((st) => st.reclaimRuns) + retired.reclaimRuns} runs, ${sum((st) => st.victims) + retired.victims} victims, ` +
      `${sum((st) => st.accountsCollapsed) + retired.accountsCollapsed} accounts collapsed, ${mib(sum((st) => st.bytesReclaimed) + retired.bytesReclaimed)} reclaimed`,
  );
  line('faults', `${faults.total()} injected: ${faults}`);
  line('part. errors', `${participantErrors.total()} events: ${participantErrors}`);
  line('churn', `${reconfigures} reconfigures (+${reconfiguresRejected} invalid, rejected), ${gcs} forced gc, ${shutdowns} tracker shutdowns`);
  line('books', `${audits} audits (after every step, inside every collapse event), ${quiescentChecks} settled checks; wind-down: ${rounds} gc rounds`);
  line('rxjs', `${stoppedNotifications} notifications to stopped subscribers (not counted as violations)`);
  line(
    'heap',
    `heapUsed after gc: start ${mib(heapStart)}, end ${mib(heapEnd)} (${growth >= 0 ? '+' : ''}${mib(growth)}; tolerance ${mib(tolerance)}); ` +
      `rss ${mib(process.memoryUsage().rss)}; ${sample.length - alive.length}/${sample.length} sampled stream objects collected`,
  );
  if (violationCount > 0) {
    console.log(`FAIL: ${violationCount} violation(s), by kind (count, first occurrence):`);
    for (const { count, first } of violations.values()) console.log(`  ${String(count).padStart(6)} × ${first}`);
    process.exitCode = 1;
  } else {
    console.log('PASS: no violation');
  }
}

main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error('soak crashed:', err);
    process.exit(1);
  },
);
