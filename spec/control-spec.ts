/**
 * The guards' hooks (`lib/control.ts`): a `ReclaimControl` driven directly, as the heap guard
 * and the staleness guard will.
 */
import { expect } from 'chai';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import { controlOf } from '../lib/control.js';
import { ConfigError } from '../lib/errors.js';
import type { MemquotaEvent } from '../lib/types.js';
import { FakeClock, TestParticipant, expectBooks, join, recordEvents, victimIds } from './helpers/books.js';

function starts(events: readonly MemquotaEvent[]): unknown[] {
  return events.filter((e) => e.type === 'reclaim-start').map((e) => ({ cause: (e as { cause: string }).cause, lowWater: (e as { lowWater: number }).lowWater }));
}

describe('ReclaimControl (lib/control.ts)', () => {
  it('shows the tracker figures, its clock and its pressure state', () => {
    const clock = new FakeClock(42);
    const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 800 }, { now: clock.now });
    const control = controlOf(tracker);
    const ps: TestParticipant[] = [];
    expect([control.used, control.max, control.lowWater, control.softMax, control.now(), control.highPressure]).to.deep.equal([0, 1000, 500, 800, 42, false]);
    join(tracker.newAccount(), ps, 0).claim(900);
    expect([control.used, control.highPressure]).to.deep.equal([900, true]);
    expectBooks(tracker, ps);
    expect(() => controlOf({})).to.throw(TypeError, /not a MemoryQuotaTracker/);
  });

  it("requestReclaim('heap', downTo) reclaims oldest-first under max, reported with its cause and counted", async () => {
    const tracker = MemoryQuotaTracker.create({ max: 10_000, lowWater: 5000 });
    const events = recordEvents(tracker);
    const ps: TestParticipant[] = [];
    const accounts = [30, 10, 20].map((age) => {
      const account = tracker.newAccount();
      join(account, ps, age).claim(1000);
      return account;
    });
    controlOf(tracker).requestReclaim('heap', 1500);
    await tracker.settled();
    expectBooks(tracker, ps, { accounts: 1 });
    expect(victimIds(events)).to.deep.equal([accounts[1]!.id, accounts[2]!.id]);
    expect(starts(events)).to.deep.equal([{ cause: 'heap', lowWater: 1500 }]);
    expect(tracker.stats).to.deep.include({ reclaimRuns: 1, heapGuardRuns: 1, staleRuns: 0 });
  });

  it("requestReclaim('stale', 0, olderThan) takes only accounts whose data is older than olderThan", async () => {
    const tracker = MemoryQuotaTracker.create({ max: 10_000, lowWater: 5000 });
    const events = recordEvents(tracker);
    const ps: TestParticipant[] = [];
    const old = tracker.newAccount();
    const young = tracker.newAccount();
    join(old, ps, 10).claim(1000);
    join(young, ps, 100).claim(1000);
    controlOf(tracker).requestReclaim('stale', 0, 50);
    await tracker.settled();
    expectBooks(tracker, ps, { accounts: 1 });
    expect(victimIds(events)).to.deep.equal([old.id]);
    expect(young.closed).to.equal(false);
    expect(tracker.stats).to.deep.include({ staleRuns: 1, heapGuardRuns: 0 });
    // A stale run that found nothing more does not stall later quota runs.
    join(young, ps, 100).claim(9500);
    await tracker.settled();
    expect(young.closed).to.equal(true);
    expectBooks(tracker, ps, { accounts: 0 });
  });

  it('onShutdown is called once at shutdown (at once when already shut down); requestReclaim is then a no-op', () => {
    const tracker = MemoryQuotaTracker.create({ max: 1000 });
    const control = controlOf(tracker);
    let stops = 0;
    control.onShutdown(() => stops++);
    tracker.shutdown();
    tracker.shutdown();
    expect(stops).to.equal(1);
    let late = 0;
    control.onShutdown(() => late++);
    expect(late).to.equal(1);
    expect(() => control.requestReclaim('heap', 0)).not.to.throw();
    expect(tracker.stats.reclaimRuns).to.equal(0);
  });

  it('validates the guard options with ConfigError', () => {
    const bad: [object, string][] = [
      [{ heapGuard: 'yes' }, 'heapGuard'],
      [{ heapGuard: { mark: 0 } }, 'heapGuard'],
      [{ heapGuard: { mark: 1.5 } }, 'heapGuard'],
      [{ heapGuard: null }, 'heapGuard'],
      [{ staleAfter: 0 }, 'staleAfter'],
      [{ staleAfter: -5 }, 'staleAfter'],
      [{ staleAfter: Number.NaN }, 'staleAfter'],
      [{ staleAfter: '5s' }, 'staleAfter'],
    ];
    for (const [options, field] of bad) {
      expect(() => MemoryQuotaTracker.create({ max: 1000 }, options), JSON.stringify(options)).to.throw(ConfigError).with.property('fields').that.deep.equals([field]);
    }
    expect(() => MemoryQuotaTracker.create({ max: 1000 }, { heapGuard: true, staleAfter: 30_000 })).not.to.throw();
    expect(() => MemoryQuotaTracker.create({ max: 1000 }, { staleAfter: Infinity }).shutdown(), 'Infinity turns the stale watch off').not.to.throw();
    expect(() => MemoryQuotaTracker.create({ max: 1000 }, { heapGuard: { mark: 0.9 } })).not.to.throw();
  });
});
