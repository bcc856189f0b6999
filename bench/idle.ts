/**
 * B5: heap bytes per idle subscription in the README's recommended form,
 * `memquota(() => server.newChild(), { scheduler: asapScheduler })` (a child account per
 * subscription, delivery on a scheduler), against an idle `observeOn(asapScheduler)`
 * subscription. The source never emits (`NEVER`), so nothing is claimed: the figure is what
 * an idle connection costs to keep, operator, participant queue, account and the tracker's
 * records and finalization registrations included.
 *
 * Each reading is the `heapUsed` difference across full GCs and macrotask turns (what V8 keeps
 * only for the current job, such as the targets of `WeakRef`s made in it, is released at the
 * job's end) around creating N subscriptions, divided by N. The two forms alternate
 * round by round; the figure is the median per-round ratio. A bare `NEVER` subscription is
 * measured once for scale.
 *
 * @module
 */
import { NEVER, asapScheduler, observeOn, type Subscription } from 'rxjs';
import { MemoryQuotaTracker, memquota, type Account } from '../index.js';
import { collect, fmt, gcAvailable, macrotask, median, skippedRow, upperRow, type BenchRow } from './harness.js';

const TARGET = 1.0;

function noop(): void {}

async function settle(): Promise<void> {
  // Several turns: finalization clean-ups of the previous round run in tasks of their own.
  for (let turn = 0; turn < 4; turn++) {
    await macrotask();
    collect();
  }
}

/** Heap bytes per subscription made by `subscribe`, `count` of them kept alive; `during` runs while they live. */
async function heapPerSubscription(count: number, subscribe: () => Subscription, during: () => void = noop): Promise<number> {
  const keep: Subscription[] = new Array<Subscription>(count);
  // Allocate the holder before the first reading so that it is not billed to the subscriptions.
  keep.fill(undefined as unknown as Subscription);
  await settle();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) keep[i] = subscribe();
  await settle();
  const after = process.memoryUsage().heapUsed;
  during();
  for (const sub of keep) sub.unsubscribe();
  return (after - before) / count;
}

/** Runs B5 and returns its row. */
export async function benchIdle(quick: boolean): Promise<BenchRow> {
  const what = 'heap per idle memquota(() => server.newChild(), {scheduler: asap}) vs observeOn(asap)';
  if (!gcAvailable()) return skippedRow('B5', what, `≤ ${TARGET}×`, 'run with --expose-gc (npm run bench does)');
  const count = quick ? 10_000 : 30_000;
  const rounds = quick ? 1 : 3;
  const tracker = MemoryQuotaTracker.create({ max: 1 << 30 });
  const server: Account = tracker.newAccount();
  const recommended = memquota<unknown>(() => server.newChild(), { scheduler: asapScheduler });
  const plain = observeOn<unknown>(asapScheduler);

  const bare = await heapPerSubscription(count, () => NEVER.subscribe(noop));
  const ratios: number[] = [];
  const quota: number[] = [];
  const base: number[] = [];
  let participantsSeen = Infinity;
  let accountsSeen = Infinity;
  const registered = (): void => {
    const { participants, accounts } = tracker.stats;
    participantsSeen = Math.min(participantsSeen, participants);
    accountsSeen = Math.min(accountsSeen, accounts);
  };
  for (let round = 0; round < rounds; round++) {
    let q: number;
    let b: number;
    if (round % 2 === 0) {
      b = await heapPerSubscription(count, () => NEVER.pipe(plain).subscribe(noop));
      q = await heapPerSubscription(count, () => NEVER.pipe(recommended).subscribe(noop), registered);
    } else {
      q = await heapPerSubscription(count, () => NEVER.pipe(recommended).subscribe(noop), registered);
      b = await heapPerSubscription(count, () => NEVER.pipe(plain).subscribe(noop));
    }
    quota.push(q);
    base.push(b);
    ratios.push(q / b);
  }
  const left = tracker.stats;
  server.close();
  tracker.shutdown();
  const unexercised =
    participantsSeen < count || accountsSeen < count + 1
      ? `the quota was not exercised: ${participantsSeen} participants / ${accountsSeen} accounts registered for ${count} subscriptions`
      : null;
  return upperRow(
    'B5',
    what,
    median(ratios),
    '×',
    TARGET,
    {
      subscriptions: count,
      claims: 0,
      participants: participantsSeen,
      accounts: accountsSeen,
      memquotaBytes: median(quota),
      observeOnBytes: median(base),
      bareSubscriptionBytes: bare,
      rounds,
      spread: `${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))}`,
      participantsLeftAfterUnsubscribe: left.participants,
    },
    unexercised,
  );
}
