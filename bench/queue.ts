/**
 * B7: `memquotaQueue`'s buffered path. N values are pushed into `sender` while nobody pulls
 * (each is claimed and waits in the queue), then the channel is completed and drained with
 * `for await` over `receiver` (each value released as it is taken). The baseline does the same
 * with a hand-written array-backed async queue ({@link ArrayQueue}).
 *
 * @module
 */
import { MemoryQuotaTracker, memquotaQueue } from '../index.js';
import { ArrayQueue } from './asyncQueue.js';
import { comparisonDetails, sideBySide, upperRow, type LateRow, type Rounds } from './harness.js';
import { noClaims, probeBooks } from './probe.js';

const TARGET = 1.2;

/** Runs B7 and returns its row. */
export async function benchQueue(rounds: Rounds, quick: boolean): Promise<LateRow> {
  const total = quick ? 20_000 : 50_000;
  const expected = (total * (total - 1)) / 2;
  const tracker = MemoryQuotaTracker.create({ max: 1 << 30 });
  const account = tracker.newAccount();
  const check = (sum: number): number => {
    if (sum !== expected) throw new Error(`B7: expected a sum of ${expected}, got ${sum}`);
    return sum;
  };

  const baseline = async (): Promise<number> => {
    const queue = new ArrayQueue<number>();
    for (let i = 0; i < total; i++) queue.push(i);
    queue.end();
    let sum = 0;
    for await (const v of queue) sum += v;
    return check(sum);
  };
  const subject = async (): Promise<number> => {
    const { sender, receiver } = memquotaQueue<number>(account);
    for (let i = 0; i < total; i++) sender.next(i);
    sender.complete();
    let sum = 0;
    for await (const v of receiver) sum += v;
    return check(sum);
  };

  const result = await sideBySide(baseline, subject, total, rounds);
  // The probe runs later: a usage$ watcher changes the tracker's type feedback (see probe.ts).
  return async () => {
    const seen = await probeBooks(tracker, subject);
    if (tracker.used !== 0 || tracker.audit().problems.length > 0) throw new Error('B7 left the books unbalanced');
    account.close();
    tracker.shutdown();
    return upperRow(
      'B7',
      'memquotaQueue push N then for-await drain vs array-backed async queue',
      result.ratio,
      '×',
      TARGET,
      { values: total, claims: seen.claims, releases: seen.releases, peakBytes: seen.peakBytes, ...comparisonDetails(result, 'Value') },
      noClaims(seen),
    );
  };
}
