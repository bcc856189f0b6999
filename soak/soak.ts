/**
 * The soak: churn, faults and forced garbage collection against the whole library, bounded in
 * time, checking the books all along.
 *
 * `npm run soak` (60 s) or `npm run soak:short` (10 s, part of `npm test`);
 * flags: `--seconds N`, `--seed N` (or `--seed random`), `--quiet`, `--hostile` (the shapes of
 * issue 13: reentrant signal subscribers, hostile and never-answering participants, channel
 * iterators returned from elsewhere; off by default until the fixes they need are merged).
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
import { args } from './args.js';
import { finalChecks, quiescentCheck, settleHeap } from './audits.js';
import { drive, windDown } from './drive.js';
import { rng } from './random.js';
import { describeError, elapsed, installWatchers, violation } from './report.js';
import { printSummary } from './summary.js';
import { openSlots } from './trackers.js';

/*
 * The modules, by role:
 * - args.ts      the command line
 * - random.ts    the seeded random source every choice goes through
 * - report.ts    violations, tallies, counters, the process-wide watchers
 * - pump.ts      schedulers for lagging and stalled consumers
 * - trackers.ts  the trackers under soak and their server/connection accounts
 * - streams/     the stream kinds (memquota, memquotaMap, memquotaQueue, hand-written
 *                participants; with --hostile also reentrant signal subscribers and
 *                channel iterators returned from elsewhere), each checking its deliveries
 * - books.ts     the audit run after every step and inside every collapse event
 * - churn.ts     reconfigure, and the ephemeral tracker's shutdown
 * - drive.ts     the step loop and the wind-down
 * - audits.ts    the settled check and the final checks
 * - summary.ts   the closing report
 */
async function phase<T>(name: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (err) {
    violation(`${name} threw ${describeError(err)}`);
    return undefined;
  }
}

async function main(): Promise<void> {
  installWatchers();
  rng.reseed(args.seed);
  openSlots();
  const heapStart = await settleHeap();
  const deadline = performance.now() + args.seconds * 1000;
  console.log(`soak: seed ${args.seed}, ${args.seconds} s${args.hostile ? ', hostile shapes on' : ''} (replay with --seed ${args.seed}${args.hostile ? ' --hostile' : ''})`);

  // A phase that throws (a tracker that refuses all work, say) is a violation; the summary
  // still tells what was found up to there.
  await phase('drive', () => drive(deadline));
  const driveEnd = elapsed();
  await phase('the settled check', quiescentCheck);
  const { rounds } = (await phase('the wind-down', windDown)) ?? { rounds: -1 };
  const end = (await phase('the final checks', () => finalChecks(heapStart))) ?? null;
  printSummary(driveEnd, rounds, end);
}

// If the event loop runs dry before main() is done, something the soak awaits never settles
// and holds no handle: say so and fail, instead of exiting 0 without a summary.
let finished = false;
process.on('beforeExit', () => {
  if (finished) return;
  console.error('soak: the event loop ran dry before the soak finished (an awaited promise never settles)');
  process.exit(1);
});

main().then(
  () => {
    finished = true;
    process.exit();
  },
  (err: unknown) => {
    finished = true;
    console.error('soak crashed:', err);
    process.exit(1);
  },
);
