import { expect } from 'chai';
import {
  Observable,
  Subject,
  VirtualTimeScheduler,
  asapScheduler,
  map,
  mergeMap,
  observeOn,
  of,
  queueScheduler,
  take,
  type Subscription,
} from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, memquota, type MemquotaEvent } from '../../index.js';
import { expectBooks } from '../helpers/books.js';
import { marbleScheduler, virtualTracker } from '../helpers/marbles.js';

const MiB = 1024 * 1024;

/** Reclaimed-stream error as the marble comparator sees it. */
const reclaimed = new MemoryReclaimedError('reclaimed');

describe('memquota', () => {
  describe('as a pipeline stage (quota never fills)', () => {
    it('should mirror the source frame for frame without a scheduler', () => {
      const testScheduler = marbleScheduler();
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const tracker = virtualTracker(testScheduler);
        const account = tracker.newAccount();
        const e1 = hot('  --a--b--c--|');
        const e1subs = '  ^----------!';
        const expected = '--a--b--c--|';

        expectObservable(e1.pipe(memquota(account))).toBe(expected);
        expectSubscriptions(e1.subscriptions).toBe(e1subs);
      });
    });

    it('should give what observeOn gives with the same scheduler', () => {
      const cases: { source: string; values?: Record<string, number>; unsub?: string }[] = [
        { source: '--a--b--c--|' },
        { source: '-(abc)-d--|' },
        { source: '--a--b--#' },
        { source: '--a-(bc#)' },
        { source: '--a--b--c--d--|', unsub: '-------!' },
        { source: '|' },
        { source: '#' },
        { source: '-' },
      ];
      for (const { source, unsub } of cases) {
        const run = (withQuota: boolean): unknown[] => {
          const testScheduler = marbleScheduler();
          const recorded: unknown[] = [];
          let subscriptions: unknown[] = [];
          testScheduler.run(({ cold }) => {
            const tracker = virtualTracker(testScheduler);
            const account = tracker.newAccount();
            const e1 = cold(source);
            const op = withQuota ? memquota<string>(account, { scheduler: testScheduler }) : observeOn<string>(testScheduler);
            const sub = e1.pipe(op).subscribe({
              next: (v) => recorded.push([testScheduler.now(), 'N', v]),
              error: (e: unknown) => recorded.push([testScheduler.now(), 'E', e]),
              complete: () => recorded.push([testScheduler.now(), 'C']),
            });
            if (unsub !== undefined) testScheduler.schedule(() => sub.unsubscribe(), unsub.indexOf('!'));
            testScheduler.schedule(() => {
              subscriptions = e1.subscriptions.map((s) => [s.subscribedFrame, s.unsubscribedFrame]);
              expectBooks(tracker);
            }, 100);
          });
          return [recorded, subscriptions];
        };
        expect(run(true), `marble ${source}`).to.deep.equal(run(false));
      }
    });

    it('should not break unsubscription chains when result is unsubscribed explicitly', () => {
      const testScheduler = marbleScheduler();
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const tracker = virtualTracker(testScheduler);
        const account = tracker.newAccount();
        const e1 = hot('  --1--2--3--4--5--|');
        const e1subs = '  ^----------!      ';
        const unsub = '   -----------!      ';
        const expected = '--x--y--z---      ';

        const result = e1.pipe(
          mergeMap((x) => of(x)),
          memquota(account, { scheduler: testScheduler }),
          mergeMap((x) => of(x)),
          map((x) => ({ '1': 'x', '2': 'y', '3': 'z' })[x] ?? x),
        );
        expectObservable(result, unsub).toBe(expected);
        expectSubscriptions(e1.subscriptions).toBe(e1subs);
      });
    });

    it('should stop listening to a synchronous observable when unsubscribed', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      const account = tracker.newAccount();
      const sideEffects: number[] = [];
      const synchronousObservable = new Observable<number>((subscriber) => {
        for (let i = 0; !subscriber.closed && i < 10; i++) {
          sideEffects.push(i);
          subscriber.next(i);
        }
      });
      synchronousObservable.pipe(memquota(account), take(3)).subscribe(() => {
        /* noop */
      });
      expect(sideEffects).to.deep.equal([0, 1, 2]);
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
    });

    it('should absorb reentrant next calls and deliver them in order', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB, lowWater: 512 * 1024 });
      const account = tracker.newAccount();
      const source = new Subject<number>();
      const seen: number[] = [];
      const usedWhileReentering: number[] = [];
      source.pipe(memquota(account, { cost: () => 100 })).subscribe((x) => {
        seen.push(x);
        if (x < 3) {
          source.next(x * 10 + 1);
          source.next(x * 10 + 2);
          usedWhileReentering.push(tracker.used);
        }
        expectBooks(tracker);
      });
      source.next(1);
      expect(seen).to.deep.equal([1, 11, 12]);
      expect(usedWhileReentering).to.deep.equal([200]); // two values waited their turn
      expect(tracker.used).to.equal(0);
      source.next(2);
      expect(seen).to.deep.equal([1, 11, 12, 2, 21, 22]);
      expectBooks(tracker);
    });

    it('should complete when the subscriber completes the source from inside next', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      const source = new Subject<number>();
      const log: unknown[] = [];
      source.pipe(memquota(() => tracker.newAccount(), { cost: () => 10 })).subscribe({
        next: (x) => {
          log.push(x);
          if (x === 1) source.complete();
        },
        complete: () => log.push('complete'),
      });
      source.next(1);
      expect(log).to.deep.equal([1, 'complete']);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should leave used at 0 after a queue fills and drains', () => {
      const tracker = MemoryQuotaTracker.create({ max: 100 * MiB, lowWater: 75 * MiB });
      const account = tracker.newAccount();
      const stall = new VirtualTimeScheduler();
      const source = new Subject<string>();
      const got: string[] = [];
      source.pipe(memquota(account, { scheduler: stall })).subscribe((v) => got.push(v));
      for (let i = 0; i < 50; i++) source.next(`value ${i}`);
      expect(tracker.used).to.be.greaterThan(0);
      expectBooks(tracker);
      stall.flush();
      expect(got).to.have.length(50);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker);
    });

    it('should give each subscription its own account from a factory and close it on unsubscribe', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      const server = tracker.newAccount();
      const source = new Subject<number>();
      const subs = [1, 2, 3].map(() => source.pipe(memquota(() => server.newChild())).subscribe());
      expect(tracker.stats.accounts).to.equal(4);
      expect(tracker.stats.participants).to.equal(3);
      subs.forEach((s) => s.unsubscribe());
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
    });
  });

  describe('under reclamation', () => {
    /** 20 × 1 MiB values behind a consumer that never gets to run (its scheduler never flushes). */
    function stalledStream(account: Parameters<typeof memquota>[0], options: { onReclaim?: 'error' | 'complete' | 'drop-oldest' } = {}) {
      const stall = new VirtualTimeScheduler();
      const source = new Subject<number>();
      const got: number[] = [];
      const result: { error?: unknown; completed: boolean } = { completed: false };
      const subscription = source
        .pipe(memquota(account, { scheduler: stall, cost: () => MiB, ...options }))
        .subscribe({ next: (v) => got.push(v), error: (e) => (result.error = e), complete: () => (result.completed = true) });
      return { stall, source, got, result, subscription };
    }

    it('should collapse a stalled queue: used back to 0, MemoryReclaimedError, source unsubscribed', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB });
      const account = tracker.newAccount();
      const { source, result, got } = stalledStream(account);
      for (let i = 0; i < 20; i++) {
        source.next(i);
        expectBooks(tracker);
      }
      expect(tracker.used).to.equal(20 * MiB); // at max, not over: nothing happens
      await tracker.settled();
      expect(result.error).to.equal(undefined);
      source.next(20); // 21 MiB > max
      await tracker.settled();
      expect(result.error).to.be.instanceOf(MemoryReclaimedError);
      expect({ name: (result.error as Error).name, message: (result.error as Error).message }).to.deep.equal({
        name: reclaimed.name,
        message: reclaimed.message,
      });
      expect(got).to.deep.equal([]);
      expect(tracker.used).to.equal(0);
      expect(source.observed).to.equal(false);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 }); // the account was reclaimed
    });

    it('should kill only the queue with the older data', async () => {
      let clock = 0;
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB }, { now: () => clock });
      const older = stalledStream(tracker.newAccount());
      const younger = stalledStream(tracker.newAccount());
      for (let i = 0; i < 10; i++) {
        clock = i;
        older.source.next(i);
      }
      for (let i = 0; i < 11; i++) {
        clock = 100 + i;
        younger.source.next(i);
        expectBooks(tracker);
      }
      await tracker.settled();
      expect(older.result.error).to.be.instanceOf(MemoryReclaimedError);
      expect(younger.result.error).to.equal(undefined);
      expect(tracker.used).to.equal(11 * MiB);
      younger.stall.flush();
      expect(younger.got).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 1, participants: 1 });
    });

    it("should shed the oldest values and stay alive with onReclaim: 'drop-oldest'", async () => {
      let clock = 0;
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB }, { now: () => clock++ });
      const account = tracker.newAccount();
      const { source, stall, got, result } = stalledStream(account, { onReclaim: 'drop-oldest' });
      for (let i = 0; i < 21; i++) source.next(i);
      await tracker.settled();
      expect(tracker.used).to.equal(15 * MiB);
      expectBooks(tracker);
      stall.flush();
      expect(got).to.deep.equal([6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
      expect(result.error).to.equal(undefined);
      source.next(21);
      stall.flush();
      expect(got.at(-1)).to.equal(21);
      expect(tracker.used).to.equal(0);
      expect(account.closed).to.equal(false);
      expectBooks(tracker, undefined, { accounts: 1, participants: 1 });
    });

    it("should complete instead of erroring with onReclaim: 'complete'", async () => {
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB });
      const { source, result } = stalledStream(tracker.newAccount(), { onReclaim: 'complete' });
      for (let i = 0; i < 21; i++) source.next(i);
      await tracker.settled();
      expect(result).to.deep.equal({ completed: true });
      expect(tracker.used).to.equal(0);
      expectBooks(tracker);
    });

    it('should take down the streams of a child account when the parent is reclaimed', async () => {
      let clock = 0;
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB }, { now: () => clock });
      const server = tracker.newAccount();
      const parentStream = stalledStream(server);
      const childStream = stalledStream(() => server.newChild());
      clock = 1;
      parentStream.source.next(0);
      clock = 2;
      for (let i = 0; i < 20; i++) childStream.source.next(i);
      await tracker.settled();
      expect(parentStream.result.error).to.be.instanceOf(MemoryReclaimedError);
      expect(childStream.result.error).to.be.instanceOf(MemoryReclaimedError);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should survive being unsubscribed while reclamation runs', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB });
      const a = stalledStream(tracker.newAccount());
      const b = stalledStream(tracker.newAccount());
      const events: MemquotaEvent['type'][] = [];
      tracker.events$.subscribe((e) => {
        events.push(e.type);
        if (e.type === 'victim') b.subscription.unsubscribe(); // the other stream leaves mid-run
        expectBooks(tracker);
      });
      for (let i = 0; i < 11; i++) a.source.next(i);
      for (let i = 0; i < 10; i++) b.source.next(i);
      await tracker.settled();
      expect(events).to.deep.equal(['reclaim-start', 'victim', 'collapse', 'reclaim-end']);
      expect(a.result.error).to.be.instanceOf(MemoryReclaimedError);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
    });

    it('should error with reason closed when its account is closed', () => {
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB });
      const account = tracker.newAccount();
      const { source, result } = stalledStream(account);
      source.next(1);
      account.close();
      expect(result.error).to.be.instanceOf(MemoryReclaimedError);
      expect((result.error as MemoryReclaimedError).reason).to.equal('closed');
      expect(source.observed).to.equal(false);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should run reclamation synchronously at the end of the claim with queueScheduler', () => {
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB }, { scheduler: queueScheduler });
      const { source, result } = stalledStream(tracker.newAccount());
      for (let i = 0; i < 21; i++) source.next(i);
      expect(result.error).to.be.instanceOf(MemoryReclaimedError);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker);
    });
  });

  describe('faults', () => {
    it('should error the subscriber when cost throws, after the values queued before it, leaking nothing', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      const account = tracker.newAccount();
      const source = new Subject<number>();
      const stall = new VirtualTimeScheduler();
      const seen: unknown[] = [];
      let error: unknown;
      source
        .pipe(
          memquota(account, {
            scheduler: stall,
            cost: (x) => {
              if (x === 3) throw new Error('cost exploded');
              return 10;
            },
          }),
        )
        .subscribe({ next: (v) => seen.push(v), error: (e) => (error = e) });
      source.next(1);
      source.next(2);
      expect(tracker.used).to.equal(20);
      source.next(3);
      // As map(cost) then observeOn: the source is stopped now, the error waits its turn.
      expect(source.observed).to.equal(false);
      expect(error).to.equal(undefined);
      expect(tracker.used).to.equal(20);
      expectBooks(tracker);
      stall.flush();
      expect(seen).to.deep.equal([1, 2]);
      expect((error as Error).message).to.equal('cost exploded');
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
    });

    it('should error with a RangeError when cost returns an invalid byte count', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      let error: unknown;
      of(1)
        .pipe(memquota(tracker.newAccount(), { cost: () => -5 }))
        .subscribe({ error: (e) => (error = e) });
      expect(error).to.be.instanceOf(RangeError);
      expectBooks(tracker, undefined, { participants: 0 });
    });

    it('should deliver a source error after the queued values and release them', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      const stall = new VirtualTimeScheduler();
      const source = new Subject<number>();
      const log: unknown[] = [];
      source
        .pipe(memquota(tracker.newAccount(), { scheduler: stall, cost: () => 10 }))
        .subscribe({ next: (v) => log.push(v), error: (e: Error) => log.push(e.message) });
      source.next(1);
      source.next(2);
      source.error(new Error('source broke'));
      expect(tracker.used).to.equal(20);
      stall.flush();
      expect(log).to.deep.equal([1, 2, 'source broke']);
      expectBooks(tracker, undefined, { participants: 0 });
    });

    it('should error the subscriber when the account is already gone', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      const account = tracker.newAccount();
      account.clone().close();
      const gone = account.clone();
      account.close();
      gone.close();
      let error: unknown;
      of(1).pipe(memquota(gone)).subscribe({ error: (e) => (error = e) });
      expect((error as Error).name).to.equal('MemquotaError');
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should reject bad options when the operator is created', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      const account = tracker.newAccount();
      expect(() => memquota({} as never)).to.throw(TypeError, /account must be an Account/);
      expect(() => memquota(account, { cost: 5 as never })).to.throw(TypeError, /cost must be a function/);
      expect(() => memquota(account, { onReclaim: 'explode' as never })).to.throw(TypeError, /onReclaim/);
      expect(() => memquota(account, { scheduler: {} as never })).to.throw(TypeError, /scheduler/);
    });

    it('should free everything on unsubscribe, with asapScheduler delivery pending', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 750 });
      const source = new Subject<number>();
      const got: number[] = [];
      const sub: Subscription = source.pipe(memquota(() => tracker.newAccount(), { scheduler: asapScheduler, cost: () => 10 })).subscribe((v) => got.push(v));
      source.next(1);
      source.next(2);
      sub.unsubscribe();
      await Promise.resolve();
      expect(got).to.deep.equal([]);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });
  });
});
