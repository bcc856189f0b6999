/**
 * The soak's checks beyond the per-step books: after reclamation settles (`used ≤ max` unless
 * no candidate was left), and at the end (nothing left in any tracker, the streams' objects
 * collected, the heap back near its start).
 *
 * @module
 */
import { gc } from './args.js';
import { checkBooks } from './books.js';
import { turn } from './pump.js';
import { counters, Tally, violation } from './report.js';
import { liveStreams } from './streams/index.js';
import { sample } from './streams/stream.js';
import { MiB, slots } from './trackers.js';

/** After reclamation settles, with no claim in between: used ≤ max unless no candidate was left. */
/** How long `settled()` may take before the soak calls it hung, ms. */
const SETTLE_PATIENCE_MS = 10_000;

/**
 * Waits for every tracker's reclamation to settle; a `settled()` that has not resolved in `ms`
 * is a violation (a participant that never answers must not stall reclamation for good).
 */
export async function settledWithin(ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    // Kept referenced: a settled() that never resolves holds no handle, and with this timer
    // unref'd the event loop would run dry and the process exit mid-soak.
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  const pending = new Set(slots);
  const all = Promise.all(slots.map((s) => s.tracker.settled().then(() => void pending.delete(s))));
  const outcome = await Promise.race([all, timeout]);
  clearTimeout(timer);
  if (outcome !== 'timeout') return true;
  violation(`settled() did not resolve within ${ms} ms on ${[...pending].map((s) => s.name).join(', ')}`);
  return false;
}

export async function quiescentCheck(): Promise<void> {
  counters.quiescentChecks++;
  if (!(await settledWithin(SETTLE_PATIENCE_MS))) return;
  for (const slot of slots) {
    checkBooks(slot, 'settled');
    if (slot.tracker.used > slot.tracker.max && slot.lastOutcome !== 'no-candidate') {
      violation(`${slot.name}: used ${slot.tracker.used} > max ${slot.tracker.max} after reclamation settled (last run: ${slot.lastOutcome})`);
    }
  }
}

export function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}

export async function settleHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await turn();
  }
  return heapUsed();
}

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** What the final checks measured, for the summary. */
export interface EndState {
  readonly heapStart: number;
  readonly heapEnd: number;
  readonly growth: number;
  readonly tolerance: number;
  readonly sampledAlive: number;
}

/**
 * After everything was closed or forgotten and collected: `used` is 0 and no account or
 * participant record is left in any tracker, no stream is still registered, the sampled
 * stream objects were collected, and the heap is back near its start.
 */
export async function finalChecks(heapStart: number): Promise<EndState> {
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
  return { heapStart, heapEnd, growth, tolerance, sampledAlive: alive.length };
}
