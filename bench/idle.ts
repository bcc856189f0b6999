/**
 * B5: heap bytes per idle `memquota` queue. 100k subscriptions to a source that never emits,
 * each through `memquota(account)` (so each registers one participant queue), measured as the
 * `heapUsed` difference across full GCs (`--expose-gc`), divided by the count.
 *
 * The same is measured for a bare subscription to the source (no operator) and, for scale, for
 * `map(x => x)` in place of `memquota`. The figure held against the target is what `memquota`
 * adds to a bare subscription: its subscriber, its queue, its participant and participation,
 * and the tracker's records and finalization registrations. The gross figure is printed beside.
 *
 * @module
 */
import { NEVER, map, type MonoTypeOperatorFunction, type Subscription } from 'rxjs';
import { MemoryQuotaTracker, memquota } from '../index.js';
import { collect, gcAvailable, median, type BenchRow } from './harness.js';

const QUEUES = 100_000;
const TARGET = 500;

function noop(): void {}

/** Heap bytes per subscription of `NEVER.pipe(operator())` (or bare `NEVER`), kept alive, `QUEUES` of them. */
function heapPerSubscription(operator: (() => MonoTypeOperatorFunction<unknown>) | null): number {
  const keep: Subscription[] = new Array<Subscription>(QUEUES);
  // Allocate the holder before the first reading so that it is not billed to the subscriptions.
  keep.fill(undefined as unknown as Subscription);
  collect();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < QUEUES; i++) keep[i] = (operator === null ? NEVER : NEVER.pipe(operator())).subscribe(noop);
  collect();
  const after = process.memoryUsage().heapUsed;
  for (const sub of keep) sub.unsubscribe();
  return (after - before) / QUEUES;
}

/** Runs B5 and returns its row. */
export function benchIdleQueues(): BenchRow {
  if (!gcAvailable()) {
    return { id: 'B5', name: 'heap bytes per idle memquota queue', value: NaN, unit: 'bytes', target: `≤ ${TARGET} bytes`, ok: false, details: { error: 'run with --expose-gc' } };
  }
  const tracker = MemoryQuotaTracker.create({ max: 1 << 30 });
  const account = tracker.newAccount();
  const bare: number[] = [];
  const plain: number[] = [];
  const quota: number[] = [];
  for (let round = 0; round < 3; round++) {
    bare.push(heapPerSubscription(null));
    plain.push(heapPerSubscription(() => map((x: unknown) => x)));
    quota.push(heapPerSubscription(() => memquota<unknown>(account)));
  }
  const participantsLeft = tracker.stats.participants;
  account.close();
  tracker.shutdown();
  const gross = median(quota);
  const base = median(bare);
  const net = gross - base;
  return {
    id: 'B5',
    name: 'heap bytes per idle memquota queue (over a bare subscription)',
    value: net,
    unit: 'bytes',
    target: `≤ ${TARGET} bytes`,
    ok: net <= TARGET,
    details: { grossBytes: gross, bareSubscriptionBytes: base, mapSubscriptionBytes: median(plain), queues: QUEUES, rounds: quota.length, participantsLeftAfterUnsubscribe: participantsLeft },
  };
}
