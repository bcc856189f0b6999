/**
 * B4: how long reclamation takes, from the claim that crosses `max` until `used` is at or
 * below `lowWater`, with 1k, 10k and 100k participants, each in its own account, each with a
 * distinct data age (ages shuffled so that creation order says nothing about them).
 *
 * Every participant holds the same number of bytes, and the books sit just under `max`; one
 * more claim crosses it. With the default `lowWater` (75 %) a quarter of the accounts are
 * torn down. The clock is from the default tracker scheduler (`asapScheduler`): the figure is
 * what a server sees, scheduling included, measured until `tracker.settled()` resolves.
 *
 * @module
 */
import { MemoryQuotaTracker, type Account, type Participant, type Participation } from '../index.js';
import { collect, median, nowMs, type BenchRow } from './harness.js';

const BYTES_EACH = 1000;
const TARGET_MS = 100;
const TARGET_GROWTH = 12;

/** A queue-like participant that holds `BYTES_EACH` bytes since `oldest` and collapses when asked. */
class HeldBytes implements Participant {
  participation: Participation | null = null;
  constructor(private readonly oldest: number) {}
  getOldest(): number | undefined {
    return this.oldest;
  }
  reclaim(): 'collapsing' {
    return 'collapsing';
  }
}

/** A deterministic shuffle of `0 … n-1` (xorshift), so every run sees the same ages. */
function shuffledAges(n: number): Float64Array {
  const ages = new Float64Array(n);
  for (let i = 0; i < n; i++) ages[i] = i;
  let state = 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const j = (state >>> 0) % (i + 1);
    const t = ages[i]!;
    ages[i] = ages[j]!;
    ages[j] = t;
  }
  return ages;
}

/** One measurement: ms from the crossing claim until reclamation has settled. */
async function reclaimOnce(participants: number): Promise<{ ms: number; victims: number }> {
  const max = participants * BYTES_EACH;
  const tracker = MemoryQuotaTracker.create({ max }, { now: () => participants + 1 });
  const accounts: Account[] = [];
  const keep: HeldBytes[] = [];
  const ages = shuffledAges(participants);
  for (let i = 0; i < participants; i++) {
    const account = tracker.newAccount();
    const held = new HeldBytes(ages[i]!);
    held.participation = account.registerParticipant(held);
    held.participation.claim(i === 0 ? BYTES_EACH - 1 : BYTES_EACH);
    accounts.push(account);
    keep.push(held);
  }
  collect();
  const start = nowMs();
  keep[0]!.participation!.claim(2); // used = max + 1: crosses max
  await tracker.settled();
  const ms = nowMs() - start;
  if (tracker.used > tracker.lowWater) throw new Error(`B4: reclamation stopped at ${tracker.used} > lowWater ${tracker.lowWater}`);
  const victims = tracker.stats.victims;
  for (const held of keep) held.participation!.close();
  for (const account of accounts) account.close();
  tracker.shutdown();
  // Let FinalizationRegistry clean-ups (macrotasks) run before the next measurement, so that no
  // run pays for the garbage of the one before.
  await new Promise((resolve) => setImmediate(resolve));
  collect();
  return { ms, victims };
}

/** Runs B4 and returns its rows (one per size, and the growth factor). */
export async function benchReclaim(): Promise<BenchRow[]> {
  // Sizes are interleaved round by round, so that a noisy stretch of time hits all of them.
  const sizes: [size: number, perRound: number][] = [
    [1_000, 3],
    [10_000, 2],
    [100_000, 1],
  ];
  const rounds = 6;
  const times = new Map<number, number[]>(sizes.map(([size]) => [size, []]));
  const victims = new Map<number, number>();
  await reclaimOnce(10_000); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [size, perRound] of sizes) {
      for (let i = 0; i < perRound; i++) {
        const once = await reclaimOnce(size);
        times.get(size)!.push(once.ms);
        victims.set(size, once.victims);
      }
    }
  }
  const rows: BenchRow[] = [];
  const medians = new Map<number, number>();
  for (const [size] of sizes) {
    const list = times.get(size)!;
    const ms = median(list);
    medians.set(size, ms);
    rows.push({
      id: 'B4',
      name: `reclaim max→lowWater, ${size.toLocaleString('en-US')} participants`,
      value: ms,
      unit: 'ms',
      target: size === 100_000 ? `≤ ${TARGET_MS} ms` : '',
      ok: size === 100_000 ? ms <= TARGET_MS : true,
      details: { participants: size, victims: victims.get(size)!, runs: list.length, minMs: Math.min(...list), maxMs: Math.max(...list) },
    });
  }
  const growth = medians.get(100_000)! / medians.get(10_000)!;
  rows.push({
    id: 'B4',
    name: 'reclaim growth 10k→100k participants',
    value: growth,
    unit: '×',
    target: `≤ ${TARGET_GROWTH}×`,
    ok: growth <= TARGET_GROWTH,
    details: { ms10k: medians.get(10_000)!, ms100k: medians.get(100_000)! },
  });
  return rows;
}
