import { expect } from 'chai';
import fc from 'fast-check';
import {
  concatMap,
  concatWith,
  finalize,
  ignoreElements,
  mergeMap,
  NEVER,
  Observable,
  type ObservableInput,
  of,
  type OperatorFunction,
  queueScheduler,
  Subject,
  type Subscription,
  take,
  timer,
} from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { Account, MemoryQuotaTracker, MemoryReclaimedError, MemquotaError, type MemquotaEvent } from '../../index.js';
import { memquotaMap } from '../../operators/memquotaMap.js';
import { expectBooks, TestParticipant } from '../helpers/books.js';
import { marbleScheduler, plain, virtualTracker } from '../helpers/marbles.js';


const reclaimed = new MemoryReclaimedError('reclaimed');
const ten = (): number => 10;
const MiB = 1024 * 1024;

describe('memquotaMap', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = marbleScheduler();
  });

  /** A tracker that reclaims inside the virtual time. */
  function virtualQuota(config: { max: number; lowWater?: number } = { max: 2 ** 40 }): MemoryQuotaTracker {
    return virtualTracker(testScheduler, config);
  }

  describe('creation', () => {
    const tracker = MemoryQuotaTracker.create({ max: 1000 });
    const account = tracker.newAccount();
    const project = (x: number) => of(x);

    it('rejects an account argument that is neither an Account nor a factory', () => {
      expect(() => memquotaMap(null as unknown as Account, project)).to.throw(TypeError, /account/);
      expect(() => memquotaMap({} as unknown as Account, project)).to.throw(TypeError, /account/);
    });

    it('rejects a project that is not a function', () => {
      expect(() => memquotaMap(account, 42 as unknown as typeof project)).to.throw(TypeError, /project/);
    });

    it('rejects a concurrency that is not an integer ≥ 1 or Infinity', () => {
      for (const concurrency of [0, -1, 1.5, NaN, -Infinity]) {
        expect(() => memquotaMap(account, project, { concurrency }), String(concurrency)).to.throw(RangeError, /concurrency/);
      }
      expect(() => memquotaMap(account, project, { concurrency: '2' as unknown as number })).to.throw(TypeError, /concurrency/);
      expect(() => memquotaMap(account, project, { concurrency: Infinity })).not.to.throw();
      expect(() => memquotaMap(account, project, { concurrency: 3 })).not.to.throw();
    });

    it('rejects a cost that is not a function', () => {
      expect(() => memquotaMap(account, project, { cost: 8 as unknown as () => number })).to.throw(TypeError, /cost/);
    });
  });

  describe('as concatMap / mergeMap', () => {
    it('maps values one at a time at concurrency 1 (concatMap), in arrival order', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const account = virtualQuota().newAccount();
        const inners: Record<string, ReturnType<typeof cold>> = {
          a: cold('            --1-2|         '),
          b: cold('                 -3|       '),
          c: cold('                   4--|    '),
        };
        const source = hot('  -a---b-c--------|');
        const sourceSubs = '  ^---------------!';
        const aSubs = '       -^----!          ';
        const bSubs = '       ------^-!        ';
        const cSubs = '       --------^--!     ';
        const expected = '    ---1-2-34-------|';

        expectObservable(source.pipe(memquotaMap(account, (x: string) => inners[x]!))).toBe(expected);
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inners.a!.subscriptions).toBe(aSubs);
        expectSubscriptions(inners.b!.subscriptions).toBe(bSubs);
        expectSubscriptions(inners.c!.subscriptions).toBe(cSubs);
      });
    });

    it('runs up to `concurrency` inners at once (mergeMap)', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const account = virtualQuota().newAccount();
        const inners: Record<string, ReturnType<typeof cold>> = {
          a: cold('            ---1---|     '),
          b: cold('              --2|       '),
          c: cold('                 3|      '),
        };
        const source = hot('  -a-b-c------|');
        const sourceSubs = '  ^-----------!';
        const aSubs = '       -^------!    ';
        const bSubs = '       ---^--!      ';
        const cSubs = '       ------^!     ';
        const expected = '    ----123-----|';

        expectObservable(source.pipe(memquotaMap(account, (x: string) => inners[x]!, { concurrency: 2 }))).toBe(expected);
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inners.a!.subscriptions).toBe(aSubs);
        expectSubscriptions(inners.b!.subscriptions).toBe(bSubs);
        expectSubscriptions(inners.c!.subscriptions).toBe(cSubs);
      });
    });

    it('passes the index of each value to project', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const seen: [string, number][] = [];
      of('a', 'b', 'c')
        .pipe(
          memquotaMap(
            tracker.newAccount(),
            (x, i) => {
              seen.push([x, i]);
              return of(x);
            },
            { concurrency: 2 },
          ),
        )
        .subscribe();
      expect(seen).to.deep.equal([
        ['a', 0],
        ['b', 1],
        ['c', 2],
      ]);
    });

    it('calls project and cost as plain functions (no internal object as `this`)', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const thisValues: unknown[] = [];
      of(1)
        .pipe(
          memquotaMap(
            tracker.newAccount(),
            function (this: unknown, x: number) {
              thisValues.push(this);
              return of(x);
            },
            {
              cost: function (this: unknown) {
                thisValues.push(this);
                return 8;
              },
            },
          ),
        )
        .subscribe();
      expect(thisValues).to.deep.equal([undefined, undefined]);
    });

    it('claims a value from its arrival until its inner ends', () => {
      testScheduler.run(({ hot, cold, expectObservable }) => {
        const tracker = virtualQuota();
        const costs: Record<string, number> = { a: 1, b: 10, c: 100 };
        const source = hot('  -a-b------c----|');
        const inner = cold('   ----|           ');
        const expected = '    ---------------|';
        const samples: [number, number][] = [];
        for (const frame of [2, 4, 6, 8, 12, 16]) testScheduler.schedule(() => samples.push([frame, tracker.used]), frame);

        expectObservable(source.pipe(memquotaMap(tracker.newAccount(), () => inner, { cost: (x: string) => costs[x]! }))).toBe(expected);
        testScheduler.flush();
        // a: 1..5 in flight; b: waits 3..5, in flight 5..9; c: 10..14.
        expect(samples).to.deep.equal([
          [2, 1],
          [4, 11],
          [6, 10],
          [8, 10],
          [12, 100],
          [16, 0],
        ]);
        expectBooks(tracker, undefined, { participants: 0 });
      });
    });

    it('completes only once the source and every inner are done', () => {
      testScheduler.run(({ hot, cold, expectObservable }) => {
        const tracker = virtualQuota();
        const source = hot('  -a-|         ');
        const inner = cold('   -----1|     ');
        const expected = '    ------1|     ';
        expectObservable(source.pipe(memquotaMap(tracker.newAccount(), () => inner, { cost: ten }))).toBe(expected);
        testScheduler.schedule(() => expect(tracker.used).to.equal(10), 4);
        testScheduler.flush();
        expect(tracker.used).to.equal(0);
      });
    });

    it('errors when an inner errors, unsubscribing the source and releasing the waiting values', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const tracker = virtualQuota();
        const source = hot('  -a-b-c----|');
        const inner = cold('   -1--#     ');
        const sourceSubs = '  ^----!     ';
        const innerSubs = '   -^---!     ';
        const expected = '    --1--#     ';
        expectObservable(source.pipe(memquotaMap(tracker.newAccount(), () => inner, { cost: ten }))).toBe(expected);
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inner.subscriptions).toBe(innerSubs);
        testScheduler.flush();
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { participants: 0 });
      });
    });

    it('allows unsubscribing explicitly, and frees everything', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const tracker = virtualQuota();
        const source = hot('  -a-b-----c--|');
        const inner = cold('   --1--2--|   ');
        const unsub = '       ^-------!    ';
        const sourceSubs = '  ^-------!    ';
        const innerSubs = '   -^------!    ';
        const expected = '    ---1--2-     ';
        expectObservable(source.pipe(memquotaMap(() => tracker.newAccount(), () => inner, { cost: ten })), unsub).toBe(expected);
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inner.subscriptions).toBe(innerSubs);
        testScheduler.schedule(() => expect(tracker.used).to.equal(20), 7);
        testScheduler.flush();
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      });
    });

    it('does not break unsubscription chains when unsubscribed explicitly', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const tracker = virtualQuota();
        const source = hot('  -a-b-----c--|');
        const inner = cold('   --1--2--|   ');
        const unsub = '       ^-------!    ';
        const sourceSubs = '  ^-------!    ';
        const innerSubs = '   -^------!    ';
        const expected = '    ---1--2-     ';
        const result = source.pipe(
          mergeMap((x) => of(x)),
          memquotaMap(() => tracker.newAccount(), () => inner, { cost: ten }),
          mergeMap((x) => of(x)),
        );
        expectObservable(result, unsub).toBe(expected);
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inner.subscriptions).toBe(innerSubs);
        testScheduler.flush();
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      });
    });

    it('should stop listening to a synchronous observable when unsubscribed', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const sideEffects: number[] = [];
      const synchronousObservable = new Observable<number>((subscriber) => {
        // This will check to see if the subscriber was closed on each loop
        // when the unsubscribe hits (from the `take`), it should be closed
        for (let i = 0; !subscriber.closed && i < 10; i++) {
          sideEffects.push(i);
          subscriber.next(i);
        }
      });
      synchronousObservable.pipe(memquotaMap(() => tracker.newAccount(), (x) => of(x)), take(3)).subscribe(() => {
        /* noop */
      });
      expect(sideEffects).to.deep.equal([0, 1, 2]);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should stop listening to a synchronous inner when unsubscribed', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const sideEffects: number[] = [];
      const endlessInner = new Observable<number>((subscriber) => {
        for (let i = 0; !subscriber.closed && i < 1000; i++) {
          sideEffects.push(i);
          subscriber.next(i);
        }
      });
      const results: number[] = [];
      of(1)
        .pipe(memquotaMap(() => tracker.newAccount(), () => endlessInner), take(3))
        .subscribe((x) => results.push(x));
      expect(results).to.deep.equal([0, 1, 2]);
      expect(sideEffects).to.deep.equal([0, 1, 2]);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('releases the values of never-ending inners when take() unsubscribes', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const results: number[] = [];
      of(1, 2, 3, 4, 5)
        .pipe(
          memquotaMap(tracker.newAccount(), (x) => of(x).pipe(concatWith(NEVER)), { concurrency: Infinity, cost: ten }),
          take(3),
        )
        .subscribe((x) => results.push(x));
      expect(results).to.deep.equal([1, 2, 3]);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { participants: 0 });
    });

    type MapOperator = (project: (x: number) => Observable<number>) => OperatorFunction<number, number>;
    const rxjsOperators: [string, number, MapOperator][] = [
      ['concatMap', 1, (project) => concatMap(project)],
      ['mergeMap', Infinity, (project) => mergeMap(project)],
      ['mergeMap', 2, (project) => mergeMap(project, 2)],
    ];
    for (const [label, concurrency, rxjsOperator] of rxjsOperators) {
      it(`handles reentrant next as ${label} does (concurrency ${concurrency})`, async () => {
        // Even values map to instant inners, odd ones to inners that end a little later, so
        // that reentrant values meet both free slots and waiting values.
        const run = (operator: MapOperator): Promise<number[]> =>
          new Promise((resolve, reject) => {
            const subject = new Subject<number>();
            const results: number[] = [];
            const project = (x: number) => {
              const inner = of(x, x * 10);
              return x % 2 === 0 ? inner : inner.pipe(concatWith(timer(2).pipe(ignoreElements())));
            };
            subject.pipe(operator(project)).subscribe({
              next: (v) => {
                results.push(v);
                if (v < 6) subject.next(v + 1);
                else if (v === 6) subject.complete();
              },
              error: reject,
              complete: () => resolve(results),
            });
            subject.next(1);
          });
        const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
        const ours = await run((project) => memquotaMap(tracker.newAccount(), project, { concurrency }));
        const theirs = await run((project) => rxjsOperator(project));
        expect(ours).to.deep.equal(theirs);
        expect(ours).to.have.length(12);
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { participants: 0 });
      });
    }

    it('works on a no-op tracker', () => {
      const tracker = MemoryQuotaTracker.noop();
      const results: number[] = [];
      of(1, 2, 3)
        .pipe(memquotaMap(() => tracker.newAccount(), (x) => of(x * 2)))
        .subscribe((x) => results.push(x));
      expect(results).to.deep.equal([2, 4, 6]);
      expect(tracker.used).to.equal(0);
    });
  });

  describe('parity with mergeMap / concatMap when the quota never fills', () => {
    interface Scenario {
      source: string;
      inners: Record<string, string>;
      concurrency: number;
      unsubscribeAt?: number;
    }

    interface Recording {
      messages: unknown[];
      indexes: number[];
      sourceSubs: unknown[];
      innerSubs: unknown[][];
    }

    /** Runs a scenario through one operator and records everything observable. */
    function record(scenario: Scenario, which: 'memquotaMap' | 'mergeMap' | 'concatMap'): { recording: Recording; tracker: MemoryQuotaTracker } {
      const scheduler = marbleScheduler();
      const tracker = MemoryQuotaTracker.create({ max: 2 ** 40 }, { scheduler, now: () => scheduler.now() });
      const messages: unknown[] = [];
      const indexes: number[] = [];
      let sourceSubs: unknown[] = [];
      const innerLogs: { subscriptions: unknown[] }[] = [];
      scheduler.run(({ hot, cold }) => {
        const source = hot(scenario.source);
        sourceSubs = source.subscriptions;
        const project = (x: string, i: number): ObservableInput<string> => {
          indexes.push(i);
          const inner = cold(scenario.inners[x] ?? '|');
          innerLogs.push(inner);
          return inner;
        };
        const operator =
          which === 'memquotaMap'
            ? memquotaMap(() => tracker.newAccount(), project, { concurrency: scenario.concurrency })
            : which === 'mergeMap'
              ? mergeMap(project, scenario.concurrency)
              : concatMap(project);
        const subscription = source.pipe(operator).subscribe({
          next: (value) => messages.push({ frame: scheduler.now(), kind: 'N', value }),
          error: (error: unknown) => messages.push({ frame: scheduler.now(), kind: 'E', error }),
          complete: () => messages.push({ frame: scheduler.now(), kind: 'C' }),
        });
        if (scenario.unsubscribeAt !== undefined) scheduler.schedule(() => subscription.unsubscribe(), scenario.unsubscribeAt);
        scheduler.schedule(() => subscription.unsubscribe(), 1000);
      });
      const recording = { messages, indexes, sourceSubs, innerSubs: innerLogs.map((inner) => inner.subscriptions) };
      return { recording: plain(recording) as Recording, tracker };
    }

    function expectParity(scenario: Scenario): void {
      const ours = record(scenario, 'memquotaMap');
      const theirs = record(scenario, 'mergeMap');
      expect(ours.recording, JSON.stringify(scenario)).to.deep.equal(theirs.recording);
      if (scenario.concurrency === 1) expect(ours.recording).to.deep.equal(record(scenario, 'concatMap').recording);
      expect(ours.tracker.used).to.equal(0);
      expectBooks(ours.tracker, undefined, { accounts: 0, participants: 0 });
    }

    const inners = { a: '--1-2|', b: '-3|', c: '4--5---|', d: '|', e: '6', f: '-7-#' };
    const table: [string, Scenario][] = [
      ['values and completion', { source: '-a--b-c----d-|', inners, concurrency: 1 }],
      ['values and completion, concurrency 2', { source: '-a--b-c----d-|', inners, concurrency: 2 }],
      ['values and completion, concurrency Infinity', { source: '-abc--d--|', inners, concurrency: Infinity }],
      ['source completes before the inners', { source: '-abc|', inners, concurrency: 2 }],
      ['synchronous inners (empty, instant values)', { source: '-d-d-(dd)-|', inners: { d: '|' }, concurrency: 1 }],
      ['instant inners in a row', { source: '-xxx-x-|', inners: { x: '(12|)' }, concurrency: 2 }],
      ['a never-ending inner blocks concatMap', { source: '-e-a-b-|', inners, concurrency: 1 }],
      ['a never-ending inner takes one slot of two', { source: '-e-a-b-c-|', inners, concurrency: 2 }],
      ['an inner error', { source: '-a-f-b---|', inners, concurrency: 2 }],
      ['an inner error while values wait', { source: '-f-abc---|', inners, concurrency: 1 }],
      ['a source error while inners run', { source: '-a-c-#', inners, concurrency: 2 }],
      ['a source error while values wait', { source: '-c-abb-#', inners, concurrency: 1 }],
      ['unsubscription while values wait', { source: '-c-ab---b-|', inners, concurrency: 1, unsubscribeAt: 6 }],
      ['unsubscription with inners running', { source: '-c-ab---b-|', inners, concurrency: 3, unsubscribeAt: 5 }],
      ['out-of-order completions', { source: '-cab-ba-b-|', inners, concurrency: 3 }],
    ];
    for (const [name, scenario] of table) {
      it(`gives what mergeMap gives: ${name}`, () => expectParity(scenario));
    }

    it('gives what mergeMap gives on random marbles (property)', () => {
      const gap = fc.integer({ min: 0, max: 3 }).map((n) => '-'.repeat(n));
      const marble = (letters: string[], maxEvents: number) =>
        fc
          .tuple(fc.array(fc.tuple(gap, fc.constantFrom(...letters)), { maxLength: maxEvents }), gap, fc.constantFrom('|', '#', ''))
          .map(([events, tail, end]) => events.map(([g, l]) => g + l).join('') + tail + end);
      const scenario = fc.record({
        source: marble(['a', 'b', 'c', 'd'], 8),
        inners: fc.record({ a: marble(['1', '2'], 3), b: marble(['3'], 3), c: marble(['4', '5'], 4), d: marble(['6'], 2) }),
        concurrency: fc.constantFrom(1, 2, 3, Infinity),
        unsubscribeAt: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
      });
      fc.assert(fc.property(scenario, (s) => expectParity(s)), { numRuns: 300 });
    });
  });

  describe('reclamation', () => {
    it('collapses a stream whose values pile up behind a never-completing inner', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const tracker = virtualQuota({ max: 35, lowWater: 20 });
        const victims: MemquotaEvent[] = [];
        const collapses: MemquotaEvent[] = [];
        tracker.events$.subscribe((e) => (e.type === 'victim' ? victims : e.type === 'collapse' ? collapses : []).push(e));
        const source = hot('  -a-b-c-d-e-|');
        const inner = cold('   -1          ');
        const sourceSubs = '  ^------!     ';
        const innerSubs = '   -^-----!     ';
        const expected = '    --1----#     ';
        expectObservable(source.pipe(memquotaMap(() => tracker.newAccount(), () => inner, { cost: ten }))).toBe(expected, undefined, reclaimed);
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inner.subscriptions).toBe(innerSubs);
        testScheduler.schedule(() => expect(tracker.used).to.equal(30), 6);
        testScheduler.flush();
        expect(tracker.used).to.equal(0);
        expect(victims).to.have.length(1);
        expect(victims[0]).to.include({ oldest: 1, bytes: 40 });
        // The factory account was torn down as reclaimed (not as closed) with all its bytes,
        // and its handle closed.
        expect(collapses).to.have.length(1);
        expect(collapses[0]).to.include({ reason: 'reclaimed', released: 40 });
        expect(tracker.stats.accountsCollapsed).to.equal(1);
        expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      });
    });

    it('errors the subscriber with MemoryReclaimedError (reason reclaimed)', () => {
      const tracker = MemoryQuotaTracker.create({ max: 30, lowWater: 10 }, { scheduler: queueScheduler });
      const source = new Subject<number>();
      let error: unknown;
      source.pipe(memquotaMap(() => tracker.newAccount(), () => NEVER, { cost: ten })).subscribe({ error: (e: unknown) => (error = e) });
      for (let i = 0; i < 4; i++) source.next(i);
      expect(error).to.be.instanceOf(MemoryReclaimedError);
      expect((error as MemoryReclaimedError).reason).to.equal('reclaimed');
      expect(source.observed).to.equal(false);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('collapses 20 × 1 MiB values behind a stalled consumer (default scheduler, 20 MiB / 15 MiB)', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB });
      const source = new Subject<Buffer>();
      const stalled = new Subject<never>();
      let error: unknown;
      source.pipe(memquotaMap(() => tracker.newAccount(), () => stalled)).subscribe({ error: (e: unknown) => (error = e) });
      for (let i = 0; i < 20; i++) source.next(Buffer.alloc(MiB));
      expect(tracker.used).to.equal(20 * (MiB + 64)); // memoryCost of a Buffer: 64 + byteLength
      expect(error).to.equal(undefined); // reclamation never runs inside claim on the default scheduler
      await tracker.settled();
      expect(plain(error)).to.deep.equal(plain(reclaimed));
      expect(source.observed, 'source still subscribed').to.equal(false);
      expect(stalled.observed, 'inner still subscribed').to.equal(false);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('survives a reclamation of a synchronous scheduler that runs inside its own claim', () => {
      const tracker = MemoryQuotaTracker.create({ max: 25, lowWater: 10 }, { scheduler: queueScheduler });
      const values: number[] = [];
      let error: unknown;
      of(1, 2, 3, 4, 5)
        .pipe(memquotaMap(() => tracker.newAccount(), (x) => of(x).pipe(concatWith(NEVER)), { concurrency: 2, cost: ten }))
        .subscribe({ next: (x) => values.push(x), error: (e: unknown) => (error = e) });
      expect(values).to.deep.equal([1, 2]);
      expect(plain(error)).to.deep.equal(plain(reclaimed));
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('of two stalled streams, kills only the one with older data', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const tracker = virtualQuota({ max: 55, lowWater: 30 });
        const older = hot('        -a-a-a---------------');
        const younger = hot('      --------b-b-b--------');
        const olderInner = cold('   -1                ');
        const youngerInner = cold('        -1              ');
        const olderExpected = '    --1---------#       ';
        const youngerUnsub = '     ^-------------------!';
        const youngerExpected = '  ---------1----------';
        const olderSubs = '        ^-----------!       ';
        const youngerSubs = '      ^-------------------!';
        expectObservable(older.pipe(memquotaMap(() => tracker.newAccount(), () => olderInner, { cost: ten }))).toBe(
          olderExpected,
          undefined,
          reclaimed,
        );
        expectObservable(younger.pipe(memquotaMap(() => tracker.newAccount(), () => youngerInner, { cost: ten })), youngerUnsub).toBe(
          youngerExpected,
        );
        expectSubscriptions(older.subscriptions).toBe(olderSubs);
        expectSubscriptions(younger.subscriptions).toBe(youngerSubs);
        testScheduler.schedule(() => {
          expect(tracker.used).to.equal(30); // the younger stream's three values
          expectBooks(tracker, undefined, { accounts: 1, participants: 1 });
        }, 15);
        testScheduler.flush();
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      });
    });

    it('ages a stream by its oldest value still claimed, whatever order its inners finish in', () => {
      testScheduler.run(({ hot, cold, expectObservable }) => {
        // Stream A (concurrency 2): a0 at 1 finishes at 7; a1 at 5 and a2 at 10 stall.
        // Stream B: b at 3 stalls, so B's data (3) is older than A's once a0 is done (5).
        const tracker = virtualQuota({ max: 45, lowWater: 20 });
        const victims: MemquotaEvent[] = [];
        tracker.events$.subscribe((e) => e.type === 'victim' && victims.push(e));
        const a = hot('      -a---a----a----------');
        const b = hot('      ---b-----b-b---------');
        const first = cold('  ------|           ');
        const unsub = '      ^-----------------!  ';
        const aExpected = '  ------------------   ';
        const bExpected = '  -----------#         ';
        const aResult = a.pipe(memquotaMap(() => tracker.newAccount(), (_x, i): Observable<string> => (i === 0 ? first : NEVER), { concurrency: 2, cost: ten }));
        const bResult = b.pipe(memquotaMap(() => tracker.newAccount(), () => NEVER, { cost: ten }));
        expectObservable(aResult, unsub).toBe(aExpected);
        expectObservable(bResult).toBe(bExpected, undefined, reclaimed);
        testScheduler.flush();
        expect(victims.map((v) => (v as { oldest: number }).oldest)).to.deep.equal([3]);
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      });
    });

    it('keeps the age of its oldest in-flight value when a younger one finishes first', () => {
      testScheduler.run(({ hot, cold, expectObservable }) => {
        // A: a0 at 1 stalls, a1 at 3 finishes at 5. B: b at 2 stalls. A is older (1).
        const tracker = virtualQuota({ max: 35, lowWater: 20 });
        const victims: MemquotaEvent[] = [];
        tracker.events$.subscribe((e) => e.type === 'victim' && victims.push(e));
        const a = hot('      -a-a-----a---');
        const b = hot('      --b-----b----');
        const quick = cold('    --|     ');
        const unsub = '      ^-----------!';
        const aExpected = '  ---------#    ';
        const bExpected = '  -------------';
        const aResult = a.pipe(memquotaMap(() => tracker.newAccount(), (_x, i): Observable<string> => (i === 1 ? quick : NEVER), { concurrency: 3, cost: ten }));
        const bResult = b.pipe(memquotaMap(() => tracker.newAccount(), () => NEVER, { cost: ten }));
        expectObservable(aResult).toBe(aExpected, undefined, reclaimed);
        expectObservable(bResult, unsub).toBe(bExpected);
        testScheduler.flush();
        expect(victims.map((v) => (v as { oldest: number }).oldest)).to.deep.equal([1]);
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      });
    });

    it('collapses a stream that subscribed to its account while the account was being reclaimed', () => {
      const tracker = MemoryQuotaTracker.create({ max: 25, lowWater: 10 }, { scheduler: queueScheduler });
      const account = tracker.newAccount();
      const first = new Subject<number>();
      const late = new Subject<number>();
      const errors: unknown[] = [];
      first.pipe(memquotaMap(account, () => NEVER, { cost: ten })).subscribe({
        error: (e: unknown) => {
          errors.push(e);
          // Registers in the account after the tracker took its list of participants to ask.
          late.pipe(memquotaMap(account, () => NEVER, { cost: ten })).subscribe({ error: (e2: unknown) => errors.push(e2) });
        },
      });
      for (let i = 0; i < 3; i++) first.next(i);
      expect(plain(errors)).to.deep.equal([plain(reclaimed), plain(reclaimed)]);
      expect(late.observed).to.equal(false);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('collapses with the account when an ancestor is reclaimed', () => {
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const tracker = virtualQuota({ max: 100, lowWater: 10 });
        const parent = tracker.newAccount();
        const holder = new TestParticipant();
        holder.participation = parent.registerParticipant(holder);
        holder.claim(60, 0);
        const source = hot('  --a-b-c-d-e-f-|');
        const sourceSubs = '  ^---------!    ';
        const expected = '    ----------#    ';
        expectObservable(source.pipe(memquotaMap(() => parent.newChild(), () => NEVER, { cost: ten }))).toBe(expected, undefined, reclaimed);
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        testScheduler.flush();
        expect(holder.collapsed).to.equal(true);
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, [holder], { accounts: 0, participants: 0 });
      });
    });

    for (const [reason, end] of [
      ['closed', (account: Account) => account.close()],
      ['tracker-shutdown', (account: Account) => account.tracker.shutdown()],
    ] as const) {
      it(`errors with MemoryReclaimedError('${reason}') when the account goes away for that reason`, () => {
        testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
          const tracker = virtualQuota();
          const account = tracker.newAccount();
          const source = hot('  -a-b-c-d-|');
          const inner = cold('   -1        ');
          const sourceSubs = '  ^----!     ';
          const innerSubs = '   -^---!     ';
          const expected = '    --1--#     ';
          testScheduler.schedule(() => end(account), 5);
          expectObservable(source.pipe(memquotaMap(account, () => inner))).toBe(expected, undefined, new MemoryReclaimedError(reason));
          expectSubscriptions(source.subscriptions).toBe(sourceSubs);
          expectSubscriptions(inner.subscriptions).toBe(innerSubs);
          testScheduler.flush();
          expect(tracker.used).to.equal(0);
          if (reason === 'closed') expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
        });
      });
    }
  });

  describe('faults', () => {
    /** A tracker with an unrelated participant holding 5 bytes: "used" must come back to 5. */
    function trackerWithBystander(config: { max: number; lowWater?: number } = { max: 2 ** 40 }) {
      const tracker = virtualQuota(config);
      const bystander = new TestParticipant();
      bystander.participation = tracker.newAccount().registerParticipant(bystander);
      bystander.claim(5, 0);
      return { tracker, bystander };
    }

    it('errors the subscriber when cost throws, and leaks nothing', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const { tracker, bystander } = trackerWithBystander();
        const cost = (x: string): number => {
          if (x === 'c') throw new Error('cannot price c');
          return 10;
        };
        const source = hot('  -a-b-c-d-|');
        const inner = cold('   -1        ');
        const sourceSubs = '  ^----!     ';
        const innerSubs = '   -^---!     ';
        const expected = '    --1--#     ';
        expectObservable(source.pipe(memquotaMap(() => tracker.newAccount(), () => inner, { cost }))).toBe(expected, undefined, new Error('cannot price c'));
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inner.subscriptions).toBe(innerSubs);
        testScheduler.schedule(() => expect(tracker.used).to.equal(25), 4);
        testScheduler.flush();
        expect(tracker.used).to.equal(5);
        expectBooks(tracker, [bystander], { accounts: 1, participants: 1 });
      });
    });

    it('errors the subscriber with the RangeError of claim for an invalid cost', () => {
      for (const bad of [-1, NaN, 1.5, Infinity]) {
        const { tracker, bystander } = trackerWithBystander();
        const source = new Subject<number>();
        let error: unknown;
        source
          .pipe(memquotaMap(() => tracker.newAccount(), () => NEVER, { cost: (x) => (x === 2 ? bad : 10) }))
          .subscribe({ error: (e: unknown) => (error = e) });
        source.next(1);
        source.next(2);
        expect(error, String(bad)).to.be.instanceOf(RangeError);
        expect(source.observed).to.equal(false);
        expect(tracker.used).to.equal(5);
        expectBooks(tracker, [bystander], { accounts: 1, participants: 1 });
      }
    });

    it('errors the subscriber when project throws, and leaks nothing', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const { tracker, bystander } = trackerWithBystander();
        const inner = cold('   -1         ');
        const project = (x: string) => {
          if (x === 'b') throw new Error('cannot map b');
          return inner;
        };
        const source = hot('  -a-b-c-|   ');
        const sourceSubs = '  ^--!       ';
        const innerSubs = '   -^-!       ';
        const expected = '    --1#       ';
        expectObservable(source.pipe(memquotaMap(() => tracker.newAccount(), project, { concurrency: 2, cost: ten }))).toBe(
          expected,
          undefined,
          new Error('cannot map b'),
        );
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inner.subscriptions).toBe(innerSubs);
        testScheduler.flush();
        expect(tracker.used).to.equal(5);
        expectBooks(tracker, [bystander], { accounts: 1, participants: 1 });
      });
    });

    it('errors the subscriber when project returns something that is not an ObservableInput', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      let error: unknown;
      of(1)
        .pipe(memquotaMap(() => tracker.newAccount(), () => 42 as unknown as ObservableInput<number>))
        .subscribe({ error: (e: unknown) => (error = e) });
      expect(error).to.be.instanceOf(TypeError);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      expect(tracker.used).to.equal(0);
    });

    it('releases waiting values when the source errors', () => {
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const { tracker, bystander } = trackerWithBystander();
        const source = hot('  -a-b-c-#   ');
        const inner = cold('   -1        ');
        const sourceSubs = '  ^------!   ';
        const innerSubs = '   -^-----!   ';
        const expected = '    --1----#   ';
        expectObservable(source.pipe(memquotaMap(() => tracker.newAccount(), () => inner, { cost: ten }))).toBe(expected);
        expectSubscriptions(source.subscriptions).toBe(sourceSubs);
        expectSubscriptions(inner.subscriptions).toBe(innerSubs);
        testScheduler.schedule(() => expect(tracker.used).to.equal(35), 6);
        testScheduler.flush();
        expect(tracker.used).to.equal(5);
        expectBooks(tracker, [bystander], { accounts: 1, participants: 1 });
      });
    });

    it('copes with a subscriber that unsubscribes another stream of the account during reclamation', () => {
      const tracker = MemoryQuotaTracker.create({ max: 35, lowWater: 10 }, { scheduler: queueScheduler });
      const account = tracker.newAccount();
      const first = new Subject<number>();
      const second = new Subject<number>();
      const errors: unknown[] = [];
      let secondSubscription: Subscription | undefined = undefined;
      // The first stream registers first, so it is asked to reclaim first; its subscriber then
      // unsubscribes the second stream before the tracker reaches it.
      first.pipe(memquotaMap(account, () => NEVER, { cost: ten })).subscribe({
        error: (e: unknown) => {
          errors.push(e);
          secondSubscription?.unsubscribe();
        },
      });
      secondSubscription = second.pipe(memquotaMap(account, () => NEVER, { cost: ten })).subscribe({ error: (e: unknown) => errors.push(e) });
      second.next(1);
      first.next(1);
      first.next(2);
      second.next(2); // 40 > 35: the shared account is reclaimed, inside this claim
      expect(plain(errors)).to.deep.equal([plain(reclaimed)]);
      expect(first.observed).to.equal(false);
      expect(second.observed).to.equal(false);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('copes with the victim stream being unsubscribed when the victim is chosen', () => {
      const tracker = MemoryQuotaTracker.create({ max: 25, lowWater: 10 }, { scheduler: queueScheduler });
      const source = new Subject<number>();
      let error: unknown;
      const subscription = source
        .pipe(memquotaMap(() => tracker.newAccount(), () => NEVER, { cost: ten }))
        .subscribe({ error: (e: unknown) => (error = e) });
      tracker.events$.subscribe((e) => {
        if (e.type === 'victim') subscription.unsubscribe();
      });
      for (let i = 0; i < 3; i++) source.next(i);
      expect(error).to.equal(undefined);
      expect(source.observed).to.equal(false);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('copes with an inner whose teardown unsubscribes the stream while it is being reclaimed', () => {
      const tracker = MemoryQuotaTracker.create({ max: 25, lowWater: 10 }, { scheduler: queueScheduler });
      const source = new Subject<number>();
      let error: unknown;
      let finalized = 0;
      const subscription = source
        .pipe(
          memquotaMap(
            () => tracker.newAccount(),
            () =>
              NEVER.pipe(
                finalize(() => {
                  finalized++;
                  subscription.unsubscribe();
                }),
              ),
            { concurrency: 2, cost: ten },
          ),
        )
        .subscribe({ error: (e: unknown) => (error = e) });
      for (let i = 0; i < 3; i++) source.next(i);
      expect(finalized).to.equal(2);
      // As mergeMap: the subscriber hears the error before the inners are torn down.
      expect(error).to.be.instanceOf(MemoryReclaimedError);
      expect(subscription.closed).to.equal(true);
      expect(source.observed).to.equal(false);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('ignores what a misbehaving source or inner sends after it ended', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const faults: MemquotaEvent[] = [];
      tracker.events$.subscribe((e) => e.type === 'participant-error' && faults.push(e));
      const rude = new Observable<number>((subscriber) => {
        subscriber.next(1);
        subscriber.complete();
        subscriber.complete();
        subscriber.next(2);
        subscriber.error(new Error('too late'));
      });
      const results: number[] = [];
      let completions = 0;
      rude
        .pipe(memquotaMap(() => tracker.newAccount(), () => rude, { concurrency: 2, cost: ten }))
        .subscribe({ next: (x) => results.push(x), error: () => expect.fail('no error expected'), complete: () => completions++ });
      expect(results).to.deep.equal([1]);
      expect(completions).to.equal(1);
      expect(faults).to.deep.equal([]);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('errors the subscriber when the account factory throws or returns no Account', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const errors: unknown[] = [];
      const failing = () => {
        throw new Error('no account for you');
      };
      of(1).pipe(memquotaMap(failing, (x) => of(x))).subscribe({ error: (e: unknown) => errors.push(e) });
      of(1)
        .pipe(memquotaMap((() => 'nope') as unknown as () => Account, (x) => of(x)))
        .subscribe({ error: (e: unknown) => errors.push(e) });
      expect(plain(errors[0])).to.deep.equal({ name: 'Error', message: 'no account for you' });
      expect(errors[1]).to.be.instanceOf(TypeError);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('errors the subscriber (and closes a factory account) when the participant cannot register', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const account = tracker.newAccount();
      tracker.shutdown(); // the handle is open, its account is gone
      const errors: unknown[] = [];
      const source = new Subject<number>();
      source.pipe(memquotaMap(account, (x) => of(x))).subscribe({ error: (e: unknown) => errors.push(e) });
      source.pipe(memquotaMap(() => account, (x) => of(x))).subscribe({ error: (e: unknown) => errors.push(e) });
      expect(errors).to.have.length(2);
      for (const e of errors) expect(e).to.be.instanceOf(MemquotaError).and.to.include({ kind: 'TrackerShutdown' });
      expect(account.closed).to.equal(true);
      expect(source.observed).to.equal(false);
    });
  });

  describe('lifetimes', () => {
    it('frees everything on unsubscribe: participant closed, factory account closed', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const shared = tracker.newAccount();
      const source = new Subject<string>();
      const a = source.pipe(memquotaMap(shared, () => NEVER, { concurrency: 2 })).subscribe();
      const b = source.pipe(memquotaMap(() => tracker.newAccount(), () => NEVER)).subscribe();
      source.next('x');
      source.next('y');
      source.next('z');
      expect(tracker.used).to.equal(6 * 18); // memoryCost('x') = 16 + 2
      expectBooks(tracker, undefined, { accounts: 2, participants: 2 });
      a.unsubscribe();
      expectBooks(tracker, undefined, { accounts: 2, participants: 1 });
      b.unsubscribe();
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
      expect(tracker.used).to.equal(0);
      expect(shared.closed).to.equal(false);
    });

    it('closes a factory account when the stream completes', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      let completed = false;
      of(1, 2, 3)
        .pipe(memquotaMap(() => tracker.newAccount(), (x) => of(x), { concurrency: 2 }))
        .subscribe({ complete: () => (completed = true) });
      expect(completed).to.equal(true);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('keeps its participant alive while subscribed (the tracker holds it weakly)', async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc === undefined) return;
      const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
      const faults: MemquotaEvent[] = [];
      tracker.events$.subscribe((e) => e.type === 'participant-error' && faults.push(e));
      const source = new Subject<number>();
      const subscription = source.pipe(memquotaMap(() => tracker.newAccount(), () => NEVER, { cost: ten })).subscribe();
      source.next(1);
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(faults).to.deep.equal([]);
      expect(tracker.used).to.equal(10);
      subscription.unsubscribe();
      expect(tracker.used).to.equal(0);
    });
  });
});
