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

/**
 * A macrotask turn, then a full collection: what V8 keeps only for the current job (the
 * targets of `WeakRef`s made in it, 32 bytes each) is released at the job's end, so the
 * readings are the steady state of idle queues, not the bookkeeping of the loop that made them.
 */
async function settle(): Promise<void> {
  // Several turns: finalization clean-ups of the previous round run in tasks of their own.
  for (let turn = 0; turn < 4; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
    collect();
  }
}

/** Heap bytes per subscription of `NEVER.pipe(operator())` (or bare `NEVER`), kept alive, `QUEUES` of them. */
async function heapPerSubscription(operator: (() => MonoTypeOperatorFunction<unknown>) | null): Promise<number> {
  const keep: Subscription[] = new Array<Subscription>(QUEUES);
  // Allocate the holder before the first reading so that it is not billed to the subscriptions.
  keep.fill(undefined as unknown as Subscription);
  await settle();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < QUEUES; i++) keep[i] = (operator === null ? NEVER : NEVER.pipe(operator())).subscribe(noop);
  await settle();
  const after = process.memoryUsage().heapUsed;
  for (const sub of keep) sub.unsubscribe();
  return (after - before) / QUEUES;
}

/** Runs B5 and returns its row. */
export async function benchIdleQueues(): Promise<BenchRow> {
  if (!gcAvailable()) {
    return { id: 'B5', name: 'heap bytes per idle memquota queue', value: NaN, unit: 'bytes', target: `≤ ${TARGET} bytes`, ok: false, details: { error: 'run with --expose-gc' } };
  }
  const tracker = MemoryQuotaTracker.create({ max: 1 << 30 });
  const account = tracker.newAccount();
  const bare: number[] = [];
  const plain: number[] = [];
  const quota: number[] = [];
  for (let round = 0; round < 3; round++) {
    bare.push(await heapPerSubscription(null));
    plain.push(await heapPerSubscription(() => map((x: unknown) => x)));
    quota.push(await heapPerSubscription(() => memquota<unknown>(account)));
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
