/**
 * B4 and B4b: how long reclamation takes, and how long it blocks the event loop.
 *
 * - Real streams: N `memquota` subscriptions in the README's form, each with its own child
 *   account of a server account (`memquota(() => server.newChild(), { scheduler })`), each
 *   holding ONE value queued behind a stalled consumer: the scheduler's delivery never runs, so
 *   the value stays claimed. The books sit exactly at `max`; one more subscription claims one
 *   more value and crosses it. The figure is the time from that claim until
 *   `tracker.settled()` resolves (the tracker's default scheduler: what a server sees), in
 *   the process's CPU time (wall time beside it: on a shared machine other processes stretch
 *   wall time, not CPU time; on an idle one the two agree for this synchronous work), at
 *   which point `used ≤ lowWater`; a quarter of the streams (default `lowWater`, 75 %) are
 *   victims: each is asked to reclaim, drops its value, stops its source and errors its
 *   subscriber with `MemoryReclaimedError`.
 * - Bare participants: the same count of participants registered directly
 *   (`registerParticipant`, trivial `getOldest` and `reclaim`), each in its own child account,
 *   crossing `max` the same way. The tracker's own cost, without any operator work.
 * - B4b: a `setTimeout(0)` ticker runs during the measurement; the longest gap between two
 *   ticks is the longest the event loop was blocked (the 1M real run's; `--quick` uses 100k).
 *
 * Real and bare runs alternate; sizes are 10k, 100k, 1M (`--quick`: 10k, 100k).
 *
 * @module
 */
import { Observable, Subscription, type SchedulerLike } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, memquota, type Account, type Participant, type Participation } from '../index.js';
import { cpuMs, fmt, macrotask, median, nowMs, upperRow, type BenchRow } from './harness.js';

const BYTES_EACH = 1000;
const TARGET_MS_100K = 150;
const TARGET_GROWTH = 11;
const TARGET_REAL_OVER_BARE = 1.5;
const TARGET_BLOCK_MS = 20;

/** A scheduler whose actions never run: the stalled consumer of every real stream. */
const stalledScheduler: SchedulerLike = {
  now: () => 0,
  schedule: () => Subscription.EMPTY,
};

/**
 * The longest gap between two ticks of a `setTimeout(0)` loop while running: the longest the
 * event loop was blocked (to within the timer's 1 ms). A timer, not `setImmediate`: a
 * `setImmediate` loop never lets the process idle, and while a reclamation that yields sits
 * between batches it would spin and bill the CPU figure. The ticker also keeps the process
 * alive while the tracker's own (unref'd) timers are all that is left.
 */
class BlockTicker {
  longest = 0;
  private last = 0;
  private running = false;

  start(): void {
    this.running = true;
    this.last = nowMs();
    const tick = (): void => {
      const t = nowMs();
      if (t - this.last > this.longest) this.longest = t - this.last;
      this.last = t;
      if (this.running) setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
  }

  stop(): void {
    this.running = false;
  }
}

/** How long one reclamation took: CPU ms (the figure), wall ms, longest event-loop block. */
interface Timing {
  readonly ms: number;
  readonly wallMs: number;
  readonly blockMs: number;
}

/** What one measured reclamation saw. */
interface Run extends Timing {
  /** `used` once the N holders had claimed (then made `max`). */
  readonly heldAtMax: number;
  readonly victims: number;
  readonly collapsed: number;
  /** Subscribers that received `MemoryReclaimedError` (real streams only). */
  readonly errored: number;
  readonly bytesReclaimed: number;
  readonly usedAfter: number;
  readonly lowWater: number;
}

/** Measures from the crossing claim (`cross()`) until the tracker has settled. */
async function measure(tracker: MemoryQuotaTracker, cross: () => void): Promise<Timing> {
  collectOnce();
  await quiesce();
  const ticker = new BlockTicker();
  ticker.start();
  await macrotask();
  const startCpu = cpuMs();
  const start = nowMs();
  cross();
  await tracker.settled();
  const ms = cpuMs() - startCpu;
  const wallMs = nowMs() - start;
  await macrotask(); // the ticker sees the end of the last block
  ticker.stop();
  return { ms, wallMs, blockMs: ticker.longest };
}

/**
 * A tracker with room for the set-up; {@link atMax} then puts `max` exactly at `used`. The row
 * measures the quota's own reclamation, so the guards that would start runs of their own are
 * off: the stale watch (pressure is high from `atMax` on, and on this counting clock the
 * set-up's data is "older" than `staleAfter` ticks, so it would reclaim to lowWater before the
 * crossing claim) and the heap guard (1M streams make a large heap).
 */
function tracked(n: number): MemoryQuotaTracker {
  let clock = 0;
  return MemoryQuotaTracker.create({ max: 4 * n * BYTES_EACH }, { now: () => ++clock, staleAfter: Infinity, heapGuard: false });
}

/**
 * Sets `max` to what the set-up holds, so the next claim crosses it, whatever bytes the
 * operators book per value (their own overhead included). Checks that every one of the `n`
 * holders claimed.
 */
function atMax(tracker: MemoryQuotaTracker, n: number): number {
  const held = tracker.used;
  if (held < n * BYTES_EACH) throw new Error(`B4: ${n} stalled holders claim ${held} bytes, expected at least ${n * BYTES_EACH}`);
  tracker.reconfigure({ max: held });
  return held;
}

function outcome(tracker: MemoryQuotaTracker, timing: Timing, errored: number, heldAtMax: number): Run {
  const { victims, accountsCollapsed, bytesReclaimed } = tracker.stats;
  return { ...timing, heldAtMax, victims, collapsed: accountsCollapsed, errored, bytesReclaimed, usedAfter: tracker.used, lowWater: tracker.lowWater };
}

/** N real `memquota` streams, one stalled value each, then one more crosses `max`. */
async function realStreams(n: number): Promise<Run> {
  const tracker = tracked(n);
  const server = tracker.newAccount();
  const oneValue = new Observable<number>((subscriber) => subscriber.next(1));
  const operator = memquota<number>(() => server.newChild(), { scheduler: stalledScheduler, cost: () => BYTES_EACH });
  let errored = 0;
  const observer = {
    next: (): void => {},
    error: (err: unknown): void => {
      if (err instanceof MemoryReclaimedError) errored++;
    },
  };
  const streams: Subscription[] = new Array<Subscription>(n + 1);
  for (let i = 0; i < n; i++) streams[i] = oneValue.pipe(operator).subscribe(observer);
  const held = atMax(tracker, n);
  const timing = await measure(tracker, () => (streams[n] = oneValue.pipe(operator).subscribe(observer)));
  const run = outcome(tracker, timing, errored, held);
  for (const s of streams) s.unsubscribe();
  server.close();
  tracker.shutdown();
  return run;
}

/** N bare participants, each in its own child account, then one more crosses `max`. */
async function bareParticipants(n: number): Promise<Run> {
  const tracker = tracked(n);
  const server = tracker.newAccount();
  // The tracker holds participants weakly: keep them (and their handles) here.
  const keep: Participant[] = new Array<Participant>(n + 1);
  const handles: Participation[] = new Array<Participation>(n + 1);
  const accounts: Account[] = new Array<Account>(n + 1);
  const join = (i: number): void => {
    const account = server.newChild();
    const age = tracker.now();
    const participant: Participant = { getOldest: () => age, reclaim: () => 'collapsing' };
    const participation = account.registerParticipant(participant);
    keep[i] = participant;
    handles[i] = participation;
    accounts[i] = account;
    participation.claim(BYTES_EACH);
  };
  for (let i = 0; i < n; i++) join(i);
  const held = atMax(tracker, n);
  const timing = await measure(tracker, () => join(n));
  const run = outcome(tracker, timing, 0, held);
  for (const h of handles) h.close();
  for (const a of accounts) a.close();
  server.close();
  tracker.shutdown();
  return run;
}

/**
 * Waits until the process stops using CPU (at most 3 s): after a forced GC, V8 sweeps on
 * background threads, and `process.cpuUsage()` counts every thread, so that sweep would bill
 * the window measured next.
 */
async function quiesce(): Promise<void> {
  const deadline = nowMs() + 3000;
  for (;;) {
    const before = cpuMs();
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (cpuMs() - before < 2 || nowMs() > deadline) return;
  }
}

/** One full GC (a second one over a heap of a million streams costs seconds and finds little). */
function collectOnce(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function settleHeap(): Promise<void> {
  await macrotask();
  collectOnce();
  await macrotask();
}

function spread(list: readonly number[]): string {
  return `${fmt(Math.min(...list))}–${fmt(Math.max(...list))}`;
}

function victimsMissing(run: Run, real: boolean): string | null {
  if (run.victims === 0) return 'the quota was not exercised: no victims';
  if (real && run.errored < run.victims) return `only ${run.errored} of ${run.victims} victim streams errored with MemoryReclaimedError`;
  if (run.usedAfter > run.lowWater) return `reclamation stopped at ${run.usedAfter} bytes, above lowWater ${run.lowWater}`;
  return null;
}

/** Runs B4 and B4b and returns their rows. */
export async function benchReclaim(quick: boolean, wanted: (id: string) => boolean): Promise<BenchRow[]> {
  const sizes: [size: number, rounds: number][] = quick
    ? [
        [10_000, 2],
        [100_000, 1],
      ]
    : [
        [10_000, 3],
        [100_000, 3],
        [1_000_000, 1],
      ];
  await realStreams(10_000); // warm-up
  await bareParticipants(10_000);
  await settleHeap();
  const real = new Map<number, Run[]>();
  const bare = new Map<number, Run[]>();
  for (const [size, rounds] of sizes) {
    const r: Run[] = [];
    const b: Run[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        r.push(await realStreams(size));
        await settleHeap();
        b.push(await bareParticipants(size));
      } else {
        b.push(await bareParticipants(size));
        await settleHeap();
        r.push(await realStreams(size));
      }
      await settleHeap();
    }
    real.set(size, r);
    bare.set(size, b);
  }

  const rows: BenchRow[] = [];
  const realMs = new Map<number, number>();
  const ratios = new Map<number, number[]>();
  for (const [size] of sizes) {
    const r = real.get(size)!;
    const b = bare.get(size)!;
    const ms = median(r.map((x) => x.ms));
    realMs.set(size, ms);
    ratios.set(
      size,
      r.map((x, i) => x.ms / b[i]!.ms),
    );
    const last = r[r.length - 1]!;
    const lastBare = b[b.length - 1]!;
    const details = {
      streams: size,
      bytesAtMax: last.heldAtMax,
      victims: last.victims,
      errored: last.errored,
      bytesReclaimed: last.bytesReclaimed,
      rounds: r.length,
      spreadMs: spread(r.map((x) => x.ms)),
      wallMs: median(r.map((x) => x.wallMs)),
      bareMs: median(b.map((x) => x.ms)),
      bareVictims: lastBare.victims,
      longestBlockMs: Math.max(...r.map((x) => x.blockMs)),
    };
    const unexercised = victimsMissing(last, true) ?? victimsMissing(lastBare, false);
    const what = `real memquota streams, ${size.toLocaleString('en-US')}: crossing max → lowWater`;
    if (size === 100_000) rows.push(upperRow('B4', what, ms, 'ms', TARGET_MS_100K, details, unexercised));
    else
      rows.push(
        unexercised === null
          ? { id: 'B4', what, value: ms, unit: 'ms', target: '', verdict: 'info', details }
          : { id: 'B4', what, value: null, unit: 'ms', target: '', verdict: 'WARNING', note: unexercised, details },
      );
  }
  for (let i = 1; i < sizes.length; i++) {
    const [from] = sizes[i - 1]!;
    const [to] = sizes[i]!;
    const growth = realMs.get(to)! / realMs.get(from)!;
    rows.push(
      upperRow('B4', `growth ${from / 1000}k → ${to / 1000}k real streams`, growth, '×', TARGET_GROWTH, {
        [`ms${from / 1000}k`]: realMs.get(from)!,
        [`ms${to / 1000}k`]: realMs.get(to)!,
      }),
    );
  }
  const r100 = ratios.get(100_000)!;
  const perSize: Record<string, number | string> = {};
  for (const [size] of sizes) perSize[`ratio${size / 1000}k`] = median(ratios.get(size)!);
  rows.push(
    upperRow('B4', 'real stream vs bare participant, 100k (per-round ratio)', median(r100), '×', TARGET_REAL_OVER_BARE, {
      ...perSize,
      rounds: r100.length,
      spread: spread(r100),
    }),
  );

  if (wanted('B4b')) {
    const biggest = sizes[sizes.length - 1]![0];
    const runs = real.get(biggest)!;
    const block = Math.max(...runs.map((x) => x.blockMs));
    const last = runs[runs.length - 1]!;
    rows.push(
      upperRow(
        'B4b',
        `longest event-loop block during B4's ${biggest / 1000}k real run${quick ? ' (--quick: no 1M run)' : ''}`,
        block,
        'ms',
        TARGET_BLOCK_MS,
        { streams: biggest, reclaimMs: median(runs.map((x) => x.ms)), victims: last.victims, errored: last.errored, bytesReclaimed: last.bytesReclaimed },
        victimsMissing(last, true),
      ),
    );
  }
  return rows;
}
