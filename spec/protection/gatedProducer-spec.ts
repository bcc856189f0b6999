import { expect } from 'chai';
import { filter, firstValueFrom } from 'rxjs';
import { MemoryQuotaTracker } from '../../lib/tracker.js';
import type { MemquotaEvent, TrackerOptions } from '../../lib/types.js';
import { memquotaQueue } from '../../operators/memquotaQueue.js';
import { expectBooks } from '../helpers/books.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The documented use of the soft tier: a producer that pauses while `pressure$` is 'high',
 * feeding five channels; four consumers read, one is stuck forever (it never pulls). Each value
 * costs 216 bytes (memoryCost of a 100-character string): the stuck channel alone fills past
 * softMax and then holds use between lowWater and max.
 */
async function gatedRun(options: TrackerOptions, patienceMs: number) {
  const tracker = MemoryQuotaTracker.create({ max: 20_000, lowWater: 15_000, softMax: 18_000 }, options);
  const events: MemquotaEvent[] = [];
  tracker.events$.subscribe((e) => events.push(e));
  const values = 300;
  const server = tracker.newAccount({ name: 'server' });
  const channels = Array.from({ length: 5 }, (_, i) => {
    const account = server.newChild({ name: `client ${i}` });
    return { account, ...memquotaQueue<string>(account), received: 0, error: undefined as unknown };
  });
  const consumers = channels.slice(1).map(async (channel) => {
    try {
      for await (const value of channel.receiver) {
        channel.received += value.length === 100 ? 1 : 0;
        await sleep(0);
      }
    } catch (err) {
      channel.error = err; // a healthy consumer ends this way only when the spec shuts the tracker down
    }
  });
  let pauses = 0;
  let finished = false;
  const producer = (async () => {
    for (let i = 0; i < values; i++) {
      for (const channel of channels) {
        if ((await firstValueFrom(tracker.pressure$, { defaultValue: 'gone' })) === 'high') {
          pauses++;
          // 'gone': the tracker was shut down (pressure$ completed) while the producer waited.
          if ((await firstValueFrom(tracker.pressure$.pipe(filter((p) => p === 'normal')), { defaultValue: 'gone' })) === 'gone') return;
        }
        channel.sender.next(String(i).padEnd(100, '.'));
      }
      if (i % 10 === 0) expectBooks(tracker);
      await sleep(0);
    }
    for (const channel of channels) channel.sender.complete();
    finished = true;
  })();
  const startedAt = performance.now();
  await Promise.race([producer, sleep(patienceMs)]);
  const elapsed = performance.now() - startedAt;
  if (finished) await Promise.all(consumers);
  expectBooks(tracker);
  return { tracker, events, channels, finished, pauses, elapsed, values };
}

describe('a producer gated on pressure$, one consumer stuck forever', () => {
  it('finishes: the stuck channel is reclaimed as stale (staleAfter 100 ms)', async () => {
    const run = await gatedRun({ staleAfter: 100 }, 10_000);
    expect(run.finished, 'the producer finished').to.equal(true);
    expect(run.pauses, 'the producer paused on pressure').to.be.greaterThan(0);
    expect(run.channels[0]!.sender.closed, 'the stuck channel was reclaimed').to.equal(true);
    expect(run.channels.slice(1).map((c) => c.received)).to.deep.equal([run.values, run.values, run.values, run.values]);
    expect(run.channels.slice(1).map((c) => c.error)).to.deep.equal([undefined, undefined, undefined, undefined]);
    const starts = run.events.filter((e) => e.type === 'reclaim-start');
    expect(starts.map((e) => (e as { cause: string }).cause)).to.include('stale');
    expect(starts.map((e) => (e as { cause: string }).cause)).not.to.include('quota'); // max was never crossed
    const victims = run.events.filter((e) => e.type === 'victim').map((e) => (e as { name?: string }).name);
    expect(victims).to.deep.equal(['client 0']);
    expect(run.tracker.used).to.equal(0);
    run.tracker.shutdown();
  });

  it('deadlocks without the stale watch (staleAfter: Infinity): the case the watch exists for', async () => {
    const run = await gatedRun({ staleAfter: Infinity }, 400);
    expect(run.finished).to.equal(false);
    expect(run.tracker.used).to.be.within(run.tracker.lowWater, run.tracker.max);
    expect(run.tracker.stats.reclaimRuns).to.equal(0);
    run.tracker.shutdown(); // the paused producer waits for a pressure$ that has completed
  });

  it('finishes with the default options, within staleAfter (5 s) + one tick (1 s)', async function () {
    this.timeout(15_000);
    const run = await gatedRun({}, 8_000);
    expect(run.finished).to.equal(true);
    expect(run.elapsed).to.be.below(5_000 + 1_000 + 1_000); // the bound, plus the run's own time
    expect(run.channels[0]!.sender.closed).to.equal(true);
    const causes = run.events.filter((e) => e.type === 'reclaim-start').map((e) => (e as { cause: string }).cause);
    expect(causes).to.include('stale');
    expect(causes.every((c) => c === 'stale')).to.equal(true); // max was never crossed
    expect(run.events.filter((e) => e.type === 'victim').map((e) => (e as { name?: string }).name)).to.deep.equal(['client 0']);
    run.tracker.shutdown();
  });
});
