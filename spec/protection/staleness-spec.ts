import { expect } from 'chai';
import type { BehaviorSubject } from 'rxjs';
import { installStaleWatch, staleTick, type StaleTimers } from '../../lib/staleness.js';
import { MemoryQuotaTracker } from '../../lib/tracker.js';
import type { MemquotaEvent } from '../../lib/types.js';
import { FakeClock, TestParticipant, expectBooks, join, victimIds } from '../helpers/books.js';
import { FakeControl } from './fakeControl.js';

/** Timers the spec fires by hand. */
class FakeTimers implements StaleTimers {
  readonly running = new Map<number, { tick: () => void; ms: number }>();
  private next = 1;
  setInterval(tick: () => void, ms: number): unknown {
    const id = this.next++;
    this.running.set(id, { tick, ms });
    return id;
  }
  clearInterval(handle: unknown): void {
    this.running.delete(handle as number);
  }
  /** Fires every running timer once. */
  fire(): void {
    for (const { tick } of [...this.running.values()]) tick();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('stale watch (no deadlock on pressure)', () => {
  describe('against a fake tracker', () => {
    function watched(staleAfter = 5000): { control: FakeControl; pressure: BehaviorSubject<'normal' | 'high'>; timers: FakeTimers } {
      const control = new FakeControl(800);
      const timers = new FakeTimers();
      installStaleWatch(control, { staleAfter }, timers);
      return { control, pressure: control.pressure$, timers };
    }

    it('runs a timer only while pressure is high', () => {
      const { control, pressure, timers } = watched();
      expect(timers.running.size).to.equal(0);
      control.highPressure = true;
      pressure.next('high');
      expect([...timers.running.values()].map((t) => t.ms)).to.deep.equal([1000]);
      pressure.next('high'); // no second timer
      expect(timers.running.size).to.equal(1);
      control.highPressure = false;
      pressure.next('normal');
      expect(timers.running.size).to.equal(0);
    });

    it('each tick asks for data older than now − staleAfter to be reclaimed down to lowWater', () => {
      const { control, pressure, timers } = watched(5000);
      control.highPressure = true;
      pressure.next('high');
      control.time = 12_000;
      timers.fire();
      control.time = 13_000;
      timers.fire();
      expect(control.requests).to.deep.equal([
        ['stale', 750, 7000],
        ['stale', 750, 8000],
      ]);
    });

    it('stops its timer when a tick finds pressure normal, at completion and at shutdown', () => {
      const { control, pressure, timers } = watched();
      control.highPressure = true;
      pressure.next('high');
      control.highPressure = false; // the tracker's state changed before the edge arrived
      timers.fire();
      expect([timers.running.size, control.requests.length]).to.deep.equal([0, 0]);

      const second = watched();
      second.control.highPressure = true;
      second.pressure.next('high');
      second.pressure.complete();
      expect(second.timers.running.size).to.equal(0);

      const third = watched();
      third.control.highPressure = true;
      third.pressure.next('high');
      third.control.shutdown();
      expect(third.timers.running.size).to.equal(0);
      third.pressure.next('high'); // unsubscribed: no new timer
      expect([third.timers.running.size, third.pressure.observed]).to.deep.equal([0, false]);
    });

    it('staleAfter: Infinity installs nothing', () => {
      const { control, pressure, timers } = watched(Infinity);
      control.highPressure = true;
      pressure.next('high');
      expect([timers.running.size, pressure.observed]).to.deep.equal([0, false]);
    });

    it('ticks at staleAfter / 5, within [10 ms, 1 s]', () => {
      expect([1, 50, 100, 2500, 5000, 60_000].map(staleTick)).to.deep.equal([10, 10, 20, 500, 1000, 1000]);
    });
  });

  describe('in a tracker', () => {
    it('while pressure is high, reclaims only the accounts whose data is older than staleAfter, oldest first, down to lowWater', async () => {
      const clock = new FakeClock(0);
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 900 }, { now: clock.now, staleAfter: 50 });
      const events: MemquotaEvent[] = [];
      tracker.events$.subscribe((e) => events.push(e));
      const ps: TestParticipant[] = [];
      const [a, b, c] = [tracker.newAccount(), tracker.newAccount(), tracker.newAccount()];
      const pa = join(a, ps, 0);
      pa.claim(300);
      clock.time = 90;
      const pb = join(b, ps, 90);
      pb.claim(300);
      const pc = join(c, ps, 95);
      pc.claim(350); // used 950 > softMax: pressure high, max not crossed
      expectBooks(tracker, ps);
      clock.time = 100; // a is 100 ms old, b and c are not stale yet
      await sleep(60); // a few ticks of 10 ms
      await tracker.settled();
      expectBooks(tracker, ps);
      expect([pa.live, pb.live, pc.live, tracker.used]).to.deep.equal([false, true, true, 650]);
      // Every tick under pressure is a stale run; the first took a; the later ones found nothing old enough.
      const starts = events.filter((e) => e.type === 'reclaim-start');
      expect(starts[0]).to.deep.equal({ type: 'reclaim-start', cause: 'stale', used: 950, max: 1000, lowWater: 500 });
      expect(starts.every((e) => e.type === 'reclaim-start' && e.cause === 'stale')).to.equal(true);
      expect(events.filter((e) => e.type === 'reclaim-end').map((e) => (e as { outcome: string }).outcome)).to.satisfy((o: string[]) => o.every((x) => x === 'no-candidate'));
      expect(victimIds(events)).to.deep.equal([a.id]);
      expect(tracker.stats.staleRuns).to.equal(starts.length);

      clock.time = 200; // now b and c are stale: b (older) goes, which brings use to lowWater
      await sleep(60);
      await tracker.settled();
      expectBooks(tracker, ps);
      expect([pb.live, pc.live, tracker.used]).to.deep.equal([false, true, 350]);
      expect(events.filter((e) => e.type === 'reclaim-start').every((e) => e.type === 'reclaim-start' && e.cause === 'stale')).to.equal(true);
      expect(victimIds(events)).to.deep.equal([a.id, b.id]);

      // Pressure is normal again: the timer stopped, old data is left alone.
      const runs = tracker.stats.reclaimRuns;
      clock.time = 10_000;
      await sleep(40);
      expectBooks(tracker, ps);
      expect([pc.live, tracker.stats.reclaimRuns]).to.deep.equal([true, runs]);
      tracker.shutdown();
    });

    it('does nothing with old data while pressure is normal, nor with staleAfter: Infinity under pressure', async () => {
      const clock = new FakeClock(0);
      const normal = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 900 }, { now: clock.now, staleAfter: 20 });
      const off = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 900 }, { now: clock.now, staleAfter: Infinity });
      const ps: TestParticipant[] = [];
      const qs: TestParticipant[] = [];
      const keep = [normal.newAccount(), off.newAccount()];
      join(keep[0]!, ps, 0).claim(800);
      join(keep[1]!, qs, 0).claim(950);
      clock.time = 1_000_000;
      await sleep(50);
      await Promise.all([normal.settled(), off.settled()]);
      expectBooks(normal, ps);
      expectBooks(off, qs);
      expect([normal.used, off.used, normal.stats.reclaimRuns, off.stats.reclaimRuns]).to.deep.equal([800, 950, 0, 0]);
      normal.shutdown();
      off.shutdown();
    });
  });
});

describe('stale watch and the quota', () => {
  it('a stale look that finds nothing stale does not hold back the quota run when max is crossed later', async () => {
    const clock = new FakeClock(0);
    const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 900 }, { now: clock.now, staleAfter: 20 });
    const events: MemquotaEvent[] = [];
    tracker.events$.subscribe((e) => events.push(e));
    const ps: TestParticipant[] = [];
    const account = tracker.newAccount();
    const p = join(account, ps, 0);
    p.claim(950); // pressure high; nothing is older than now − 20
    await sleep(40); // ticks: stale looks find nothing
    await tracker.settled();
    expectBooks(tracker, ps);
    expect([p.live, tracker.used]).to.deep.equal([true, 950]);
    p.claim(100); // past max: the quota reclaims at once
    await tracker.settled();
    expectBooks(tracker, ps);
    expect([p.live, tracker.used]).to.deep.equal([false, 0]);
    expect(events.filter((e) => e.type === 'reclaim-start').map((e) => (e as { cause: string }).cause)).to.include('quota');
    tracker.shutdown();
  });
});

describe("stale watch under victimPolicy 'largest'", () => {
  it('takes only the accounts with stale data, the largest first, never a larger fresh one', async () => {
    const clock = new FakeClock(0);
    const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 200, softMax: 900 }, { now: clock.now, staleAfter: 50, victimPolicy: 'largest' });
    const events: MemquotaEvent[] = [];
    tracker.events$.subscribe((e) => events.push(e));
    const ps: TestParticipant[] = [];
    const [small, big, fresh] = [tracker.newAccount(), tracker.newAccount(), tracker.newAccount()];
    const pSmall = join(small, ps, 0);
    pSmall.claim(100);
    const pBig = join(big, ps, 0);
    pBig.claim(250);
    clock.time = 90;
    const pFresh = join(fresh, ps, 90);
    pFresh.claim(600); // the largest, but fresh: used 950, pressure high
    expectBooks(tracker, ps);
    clock.time = 100;
    await sleep(60);
    await tracker.settled();
    expectBooks(tracker, ps);
    expect(victimIds(events)).to.deep.equal([big.id, small.id]);
    expect([pSmall.live, pBig.live, pFresh.live, tracker.used]).to.deep.equal([false, false, true, 600]);
    tracker.shutdown();
  });
});
