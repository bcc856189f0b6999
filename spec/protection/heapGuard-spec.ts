import { expect } from 'chai';
import { DEFAULT_HEAP_MARK } from '../../lib/config.js';
import { HEAP_GUARD_HYSTERESIS, HeapGuards, installHeapGuard, observeMajorGcs, processHeapGuards } from '../../lib/heapGuard.js';
import { YOUNG_GENERATION_RESERVE, type HeapStatistics } from '../../lib/system.js';
import { MemoryQuotaTracker } from '../../lib/tracker.js';
import type { MemquotaEvent } from '../../lib/types.js';
import { TestParticipant, expectBooks, join, turns } from '../helpers/books.js';
import { FakeControl } from './fakeControl.js';

const MiB = 1024 * 1024;
/** A heap limit whose usable part (less the young generation) is 100 MiB. */
const LIMIT = 100 * MiB + YOUNG_GENERATION_RESERVE;

/** A registry whose heap the spec sets and whose GC observer the spec drives. */
function fakeGuards(): { guards: HeapGuards; heap: { used_heap_size: number; heap_size_limit: number } | undefined; observers: { started: number; stopped: number }; fire(): void } {
  const fake = {
    heap: { used_heap_size: 0, heap_size_limit: LIMIT } as HeapStatistics | undefined,
    observers: { started: 0, stopped: 0 },
    onGc: undefined as (() => void) | undefined,
    guards: undefined as unknown as HeapGuards,
    fire(): void {
      fake.onGc?.();
    },
  };
  fake.guards = new HeapGuards(
    () => fake.heap,
    (onGc) => {
      fake.observers.started++;
      fake.onGc = onGc;
      return () => {
        fake.observers.stopped++;
        fake.onGc = undefined;
      };
    },
  );
  return fake as ReturnType<typeof fakeGuards>;
}

describe('heap guard', () => {
  describe('one observer per process, shared by the trackers', () => {
    it('starts the observer with the first tracker, shares it, and stops it when the last one shuts down', () => {
      const fake = fakeGuards();
      const a = new FakeControl(10);
      const b = new FakeControl(10);
      expect([fake.guards.active, fake.observers.started]).to.deep.equal([false, 0]);
      installHeapGuard(a, {}, fake.guards);
      installHeapGuard(b, { heapGuard: { mark: 0.5 } }, fake.guards);
      expect([fake.guards.active, fake.guards.size, fake.observers.started]).to.deep.equal([true, 2, 1]);
      a.shutdown();
      expect([fake.guards.active, fake.guards.size, fake.observers.stopped]).to.deep.equal([true, 1, 0]);
      b.shutdown();
      expect([fake.guards.active, fake.guards.size, fake.observers.stopped]).to.deep.equal([false, 0, 1]);
      // A shut-down tracker is not asked anything any more, even if a GC is reported.
      fake.heap = { used_heap_size: 99 * MiB, heap_size_limit: LIMIT };
      fake.guards.afterMajorGc();
      expect([a.requests, b.requests]).to.deep.equal([[], []]);
      // A new tracker starts a new observer.
      installHeapGuard(new FakeControl(), {}, fake.guards);
      expect(fake.observers.started).to.equal(2);
    });

    it('guards nothing where major GCs cannot be observed (a browser)', () => {
      let asked = 0;
      const guards = new HeapGuards(
        () => ({ used_heap_size: 99 * MiB, heap_size_limit: LIMIT }),
        () => {
          asked++;
          return undefined;
        },
      );
      const control = new FakeControl(10);
      installHeapGuard(control, {}, guards);
      installHeapGuard(new FakeControl(10), {}, guards);
      expect([guards.active, guards.size, asked]).to.deep.equal([false, 0, 2]);
      control.shutdown(); // nothing registered, nothing to undo
      expect(control.requests).to.deep.equal([]);
    });

    it('holds trackers weakly: a forgotten tracker is dropped at the next GC, and the observer stops', async () => {
      const fake = fakeGuards();
      (() => installHeapGuard(new FakeControl(10), {}, fake.guards))();
      expect(fake.guards.size).to.equal(1);
      const gc = (globalThis as { gc?: () => void }).gc!;
      for (let round = 0; round < 50 && fake.guards.active; round++) {
        await turns(1); // WeakRef targets are kept until the end of the job that made them
        gc();
        fake.fire();
      }
      expect([fake.guards.active, fake.guards.size, fake.observers.stopped]).to.deep.equal([false, 0, 1]);
    });
  });

  describe('after a major GC', () => {
    it('does nothing while the live heap is at or below the mark', () => {
      const fake = fakeGuards();
      const control = new FakeControl(40 * MiB);
      installHeapGuard(control, { heapGuard: { mark: 0.8 } }, fake.guards);
      for (const used of [0, 50 * MiB, 80 * MiB]) {
        fake.heap = { used_heap_size: used, heap_size_limit: LIMIT };
        fake.fire();
      }
      expect(control.requests).to.deep.equal([]);
      expect(fake.guards.seen).to.deep.equal({ majorGcs: 3, requests: 0 });
    });

    it('above the mark, asks to reclaim down to 90 % of the mark by the tracker\'s own estimate, clamped at 0', () => {
      expect(HEAP_GUARD_HYSTERESIS).to.equal(0.9);
      const fake = fakeGuards();
      const control = new FakeControl(40 * MiB);
      installHeapGuard(control, { heapGuard: { mark: 0.8 } }, fake.guards);
      fake.heap = { used_heap_size: 90 * MiB, heap_size_limit: LIMIT };
      fake.fire();
      // 10 MiB over the mark (80 MiB), 18 MiB over 90 % of it (72 MiB).
      expect(control.requests).to.deep.equal([['heap', 40 * MiB - Math.ceil(90 * MiB - 0.9 * 0.8 * 100 * MiB), undefined]]);
      expect(control.requests[0]![1]).to.be.closeTo(22 * MiB, 1);
      fake.heap = { used_heap_size: 99 * MiB, heap_size_limit: LIMIT };
      control.used = 5 * MiB; // costs that lie: the books hold less than the excess
      fake.fire();
      expect(control.requests[1]).to.deep.equal(['heap', 0, undefined]);
    });

    it('uses the default mark when none is given', () => {
      const fake = fakeGuards();
      const control = new FakeControl(50 * MiB);
      installHeapGuard(control, {}, fake.guards);
      fake.heap = { used_heap_size: DEFAULT_HEAP_MARK * 100 * MiB, heap_size_limit: LIMIT };
      fake.fire();
      expect(control.requests).to.deep.equal([]);
      fake.heap = { used_heap_size: DEFAULT_HEAP_MARK * 100 * MiB + MiB, heap_size_limit: LIMIT };
      fake.fire();
      expect(control.requests).to.have.length(1);
      expect(control.requests[0]![1]).to.be.closeTo(50 * MiB - (MiB + (1 - HEAP_GUARD_HYSTERESIS) * DEFAULT_HEAP_MARK * 100 * MiB), 1);
    });

    it('splits the excess between trackers in proportion to what they hold; an empty tracker is not asked', () => {
      const fake = fakeGuards();
      const big = new FakeControl(30 * MiB);
      const small = new FakeControl(10 * MiB);
      const empty = new FakeControl(0);
      for (const control of [big, small, empty]) installHeapGuard(control, { heapGuard: { mark: 0.5 } }, fake.guards);
      fake.heap = { used_heap_size: 53 * MiB, heap_size_limit: LIMIT }; // 8 MiB over 90 % of the mark (45 MiB)
      fake.fire();
      expect(big.requests).to.deep.equal([['heap', 24 * MiB, undefined]]);
      expect(small.requests).to.deep.equal([['heap', 8 * MiB, undefined]]);
      expect(empty.requests).to.deep.equal([]);
    });

    it('does nothing when the heap cannot be read', () => {
      const fake = fakeGuards();
      const control = new FakeControl(40 * MiB);
      installHeapGuard(control, {}, fake.guards);
      fake.heap = undefined;
      fake.fire();
      expect(control.requests).to.deep.equal([]);
    });
  });

  describe('on Node', () => {
    it('sees real major GCs through PerformanceObserver', async () => {
      let seen = 0;
      const stop = observeMajorGcs(() => seen++)!;
      expect(stop).to.be.a('function');
      try {
        for (let round = 0; round < 50 && seen === 0; round++) {
          (globalThis as { gc?: () => void }).gc!();
          await turns(1);
        }
      } finally {
        stop();
      }
      expect(seen).to.be.greaterThan(0);
    });

    it('wires into the tracker: reclaims oldest-first with cause "heap" and counts the run; heapGuard: false leaves it alone', async () => {
      // A mark so low that the live heap is always above it: the next major GC asks for everything.
      const guarded = MemoryQuotaTracker.create({ max: 1_000_000 }, { heapGuard: { mark: 0.001 }, now: () => 0 });
      const unguarded = MemoryQuotaTracker.create({ max: 1_000_000 }, { heapGuard: false, now: () => 0 });
      const events: MemquotaEvent[] = [];
      guarded.events$.subscribe((e) => events.push(e));
      const ps: TestParticipant[] = [];
      const qs: TestParticipant[] = [];
      const accounts = [3, 1, 2].map((oldest) => {
        const account = guarded.newAccount();
        join(account, ps, oldest).claim(100);
        return account;
      });
      const other = unguarded.newAccount();
      join(other, qs, 1).claim(100);
      expectBooks(guarded, ps);
      for (let round = 0; round < 50 && guarded.used > 0; round++) {
        (globalThis as { gc?: () => void }).gc!();
        await turns(2);
        await guarded.settled();
      }
      expectBooks(guarded, ps);
      expectBooks(unguarded, qs);
      expect(guarded.used).to.equal(0);
      expect(unguarded.used).to.equal(100);
      const start = events.find((e) => e.type === 'reclaim-start');
      expect(start).to.deep.include({ cause: 'heap', used: 300, lowWater: 0 });
      expect(events.filter((e) => e.type === 'victim').map((e) => (e as { oldest: number }).oldest)).to.deep.equal([1, 2, 3]);
      expect(guarded.stats).to.deep.include({ heapGuardRuns: 1, reclaimRuns: 1, accountsCollapsed: 3 });
      expect(unguarded.stats).to.deep.include({ heapGuardRuns: 0, reclaimRuns: 0 });
      guarded.shutdown();
      unguarded.shutdown();
      for (const account of [...accounts, other]) account.close();
    });

    it('a tracker that is shut down leaves the process registry', () => {
      const before = processHeapGuards().size;
      const tracker = MemoryQuotaTracker.create({ max: 1000 });
      expect(processHeapGuards().size).to.equal(before + 1);
      tracker.shutdown();
      expect(processHeapGuards().size).to.equal(before);
      MemoryQuotaTracker.create({ max: 1000 }, { heapGuard: false }).shutdown();
      MemoryQuotaTracker.create({ max: Infinity }).shutdown();
      MemoryQuotaTracker.noop().shutdown();
      expect(processHeapGuards().size).to.equal(before);
    });
  });
});
