/**
 * The operators side by side with RxJS 7.8's own (`observeOn`, `mergeMap`, `concatMap`), with
 * a quota that never fills: a drop-in user must see the same notifications in the same order,
 * the same teardown order, and the same behaviour with misbehaving sources (issue 8).
 */
import { expect } from 'chai';
import {
  Observable,
  asapScheduler,
  concatMap,
  finalize,
  merge,
  mergeMap,
  observeOn,
  of,
  queueScheduler,
  range,
  take,
  tap,
  throwError,
  type ObservableInput,
  type OperatorFunction,
  type Subscription,
  VirtualTimeScheduler,
} from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, memoryCost, memquota, memquotaMap } from '../../index.js';
import { expectBooks } from '../helpers/books.js';
import { marbleScheduler, virtualTracker } from '../helpers/marbles.js';

const roomy = (): MemoryQuotaTracker => MemoryQuotaTracker.create({ max: 1 << 30 });
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

/** A source that logs its own teardown as `finalize <name>`. */
function logged<T>(log: unknown[], name: string, body: (s: { next(v: T): void; error(e: unknown): void; complete(): void }) => void): Observable<T> {
  return new Observable<T>((subscriber) => {
    body(subscriber);
    return () => log.push(`finalize ${name}`);
  });
}

/** Subscribes and logs every notification. */
function record<T>(log: unknown[], source: Observable<T>): Subscription {
  return source.subscribe({
    next: (v) => log.push(v),
    error: (e: unknown) => log.push(`error ${(e as Error).message}`),
    complete: () => log.push('complete'),
  });
}

describe('operators side by side with RxJS', () => {
  describe('memquota with a scheduler, against observeOn', () => {
    it('delivers everything and completes with queueScheduler outside a flush (defect 1)', () => {
      const run = (op: OperatorFunction<number, number>): unknown[] => {
        const log: unknown[] = [];
        record(log, of(1, 2, 3).pipe(op));
        return log;
      };
      const tracker = roomy();
      const account = tracker.newAccount();
      expect(run(memquota(account, { scheduler: queueScheduler }))).to.deep.equal(run(observeOn(queueScheduler)));
      expect(run(memquota(account, { scheduler: queueScheduler }))).to.deep.equal([1, 2, 3, 'complete']);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
    });

    it('stops a synchronous source after take(3) with queueScheduler (defect 1)', () => {
      const run = (op: OperatorFunction<number, number>): { produced: number; got: unknown[] } => {
        let produced = 0;
        const got: unknown[] = [];
        record(
          got,
          range(1, 100).pipe(
            tap(() => produced++),
            op,
            take(3),
          ),
        );
        return { produced, got };
      };
      const tracker = roomy();
      const ours = run(memquota(tracker.newAccount(), { scheduler: queueScheduler }));
      expect(ours).to.deep.equal(run(observeOn(queueScheduler)));
      expect(ours).to.deep.equal({ produced: 3, got: [1, 2, 3, 'complete'] });
      expectBooks(tracker);
    });

    it('interleaves two streams at one frame as observeOn does, with a TestScheduler (defect 2)', () => {
      const run = (withQuota: boolean): unknown[] => {
        const testScheduler = marbleScheduler();
        const log: unknown[] = [];
        testScheduler.run(({ hot }) => {
          const tracker = virtualTracker(testScheduler);
          const account = tracker.newAccount();
          const op = (): OperatorFunction<string, string> => (withQuota ? memquota<string>(account, { scheduler: testScheduler }) : observeOn<string>(testScheduler));
          merge(hot('--(ab)|').pipe(op()), hot('--x|').pipe(op())).subscribe({
            next: (v) => log.push(`${testScheduler.now()} ${v}`),
            complete: () => log.push(`${testScheduler.now()} complete`),
          });
        });
        return log;
      };
      expect(run(true)).to.deep.equal(run(false));
      expect(run(true)).to.deep.equal(['2 a', '2 b', '2 x', '6 complete']);
    });

    it('interleaves with other asapScheduler work and promises as observeOn does (defect 2)', async () => {
      const run = async (op: () => OperatorFunction<number, number>): Promise<unknown[]> => {
        const log: unknown[] = [];
        of(1, 2).pipe(op()).subscribe((v) => log.push(`a${v}`));
        void Promise.resolve().then(() => log.push('promise'));
        of(3, 4).pipe(op()).subscribe((v) => log.push(`b${v}`));
        asapScheduler.schedule(() => log.push('task'));
        await settle();
        return log;
      };
      const tracker = roomy();
      const account = tracker.newAccount();
      const theirs = await run(() => observeOn(asapScheduler));
      const ours = await run(() => memquota(account, { scheduler: asapScheduler }));
      expect(ours).to.deep.equal(theirs);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker);
    });

    it('unsubscribes a completed source at once, before its values are delivered (defect 3)', async () => {
      const run = async (op: OperatorFunction<number, number>): Promise<unknown[]> => {
        const log: unknown[] = [];
        record(
          log,
          of(1, 2).pipe(
            finalize(() => log.push('finalize source')),
            op,
          ),
        );
        log.push('subscribed');
        await settle();
        return log;
      };
      const tracker = roomy();
      const ours = await run(memquota(tracker.newAccount(), { scheduler: asapScheduler }));
      expect(ours).to.deep.equal(await run(observeOn(asapScheduler)));
      expect(ours).to.deep.equal(['finalize source', 'subscribed', 1, 2, 'complete']);
      expectBooks(tracker);
    });

    it('delivers nothing after the completion of a source that calls next after complete (defect 5)', async () => {
      const misbehaving = new Observable<number>((subscriber) => {
        subscriber.next(1);
        subscriber.complete();
        subscriber.next(2);
      });
      const run = async (op: OperatorFunction<number, number>): Promise<unknown[]> => {
        const log: unknown[] = [];
        record(log, misbehaving.pipe(op));
        await settle();
        return log;
      };
      const tracker = roomy();
      const ours = await run(memquota(tracker.newAccount(), { scheduler: asapScheduler }));
      expect(ours).to.deep.equal(await run(observeOn(asapScheduler)));
      expect(ours).to.deep.equal([1, 'complete']);
      expect(await run(memquota(tracker.newAccount()))).to.deep.equal([1, 'complete']);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker);
    });

    it('orders a source error and its teardown as observeOn does (defect 4)', async () => {
      const run = async (op: OperatorFunction<number, number>): Promise<unknown[]> => {
        const log: unknown[] = [];
        record(
          log,
          logged<number>(log, 'source', (s) => {
            s.next(1);
            s.error(new Error('boom'));
          }).pipe(op),
        );
        await settle();
        return log;
      };
      const tracker = roomy();
      const ours = await run(memquota(tracker.newAccount(), { scheduler: asapScheduler }));
      expect(ours).to.deep.equal(await run(observeOn(asapScheduler)));
      expectBooks(tracker);
    });
  });

  describe('memquota without a scheduler, against a plain pass-through', () => {
    it('tells the subscriber of an error or a completion before the upstream finalize (defect 4)', () => {
      for (const end of ['error', 'complete'] as const) {
        const run = (op: OperatorFunction<number, number>): unknown[] => {
          const log: unknown[] = [];
          record(
            log,
            logged<number>(log, 'source', (s) => {
              s.next(1);
              if (end === 'error') s.error(new Error('boom'));
              else s.complete();
            }).pipe(op),
          );
          return log;
        };
        const tracker = roomy();
        const ours = run(memquota(tracker.newAccount()));
        expect(ours).to.deep.equal(run(tap<number>(() => undefined)));
        expect(ours).to.deep.equal([1, end === 'error' ? 'error boom' : 'complete', 'finalize source']);
        expectBooks(tracker);
      }
    });

    it('tells the subscriber of a reclamation before the upstream finalize, with and without a scheduler (defect 4)', () => {
      const reclaimedMessage = `error ${new MemoryReclaimedError('reclaimed').message}`;
      for (const withScheduler of [false, true]) {
        const tracker = MemoryQuotaTracker.create({ max: 100, lowWater: 50 }, { scheduler: queueScheduler });
        const stalled = new VirtualTimeScheduler(); // never flushed: values wait
        const log: unknown[] = [];
        let source!: { next(v: number): void };
        record(
          log,
          logged<number>(log, 'source', (s) => (source = s)).pipe(
            memquota(tracker.newAccount(), { scheduler: withScheduler ? stalled : undefined, cost: () => 60 }),
            // without a scheduler, a consumer that re-enters makes values wait
            tap((v) => {
              if (v === 1) {
                source.next(2);
                source.next(3);
              }
            }),
          ),
        );
        source.next(1);
        if (withScheduler) source.next(2);
        // (without a scheduler the error reaches the subscriber from inside the tap, before it logs 1)
        expect(log).to.deep.equal([reclaimedMessage, 'finalize source']);
        expect(tracker.used).to.equal(0);
        expectBooks(tracker);
      }
    });
  });

  describe('memquotaMap, against mergeMap and concatMap', () => {
    type Project = (v: number) => ObservableInput<number>;
    const cases: { name: string; source: (log: unknown[]) => Observable<number>; project: (log: unknown[]) => Project }[] = [
      {
        name: 'plain completion',
        source: (log) => logged(log, 'source', (s) => (s.next(1), s.next(2), s.complete())),
        project: (log) => (v) => logged(log, `inner ${v}`, (s) => (s.next(v * 10), s.complete())),
      },
      {
        name: 'source completes before its inners',
        source: (log) => logged(log, 'source', (s) => (s.next(1), s.complete())),
        project: (log) => (v) => of(v).pipe(observeOn(queueScheduler), finalize(() => log.push(`finalize inner ${v}`))),
      },
      {
        name: 'inner error',
        source: (log) => logged(log, 'source', (s) => (s.next(1), s.next(2))),
        project: (log) => (v) => logged(log, `inner ${v}`, (s) => (v === 2 ? s.error(new Error('inner failed')) : s.next(v))),
      },
      {
        name: 'project throwing',
        source: (log) => logged(log, 'source', (s) => (s.next(1), s.next(2))),
        project: (log) => (v) => {
          if (v === 2) throw new Error('project failed');
          return logged(log, `inner ${v}`, (s) => s.next(v));
        },
      },
      {
        name: 'source error',
        source: (log) => logged(log, 'source', (s) => (s.next(1), s.error(new Error('source failed')))),
        project: (log) => (v) => logged(log, `inner ${v}`, (s) => s.next(v)),
      },
      {
        name: 'Promise inners',
        source: () => of(1, 2, 3),
        project: () => (v) => Promise.resolve(v * 2),
      },
      {
        name: 'a thrown error of an ObservableInput',
        source: () => of(1),
        project: () => () => throwError(() => new Error('thrown')),
      },
    ];
    for (const c of cases) {
      for (const concurrency of [1, 2, Infinity]) {
        it(`gives the same notifications and teardown order as ${concurrency === 1 ? 'concatMap' : 'mergeMap'} at concurrency ${concurrency}: ${c.name} (defect 4)`, async () => {
          const subscriptions: Subscription[] = [];
          const run = async (op: (p: Project) => OperatorFunction<number, number>): Promise<unknown[]> => {
            const log: unknown[] = [];
            subscriptions.push(record(log, c.source(log).pipe(op(c.project(log)))));
            await settle();
            return log;
          };
          const tracker = roomy();
          const account = tracker.newAccount();
          const theirs = await run((p) => (concurrency === 1 ? concatMap(p) : mergeMap(p, concurrency)));
          const ours = await run((p) => memquotaMap(account, p, { concurrency }));
          expect(ours).to.deep.equal(theirs);
          expectBooks(tracker);
          for (const subscription of subscriptions) subscription.unsubscribe();
          expect(tracker.used).to.equal(0);
          expectBooks(tracker, undefined, { participants: 0 });
        });
      }
    }
  });

  describe('memoryCost (defect 6)', () => {
    it('never throws: a throwing getter, a revoked Proxy or a hostile Proxy get an estimate', () => {
      const getter = {
        ok: 1,
        get bad(): number {
          throw new Error('getter');
        },
      };
      const { proxy: revoked, revoke } = Proxy.revocable({}, {});
      revoke();
      const hostile = new Proxy(
        {},
        {
          ownKeys() {
            throw new Error('ownKeys');
          },
          getPrototypeOf() {
            throw new Error('getPrototypeOf');
          },
        },
      );
      const hostileArray = new Proxy([1, 2, 3], {
        get() {
          throw new Error('get');
        },
      });
      for (const value of [getter, revoked, hostile, hostileArray, [getter], { nested: { revoked } }, new Map([[1, revoked]])]) {
        const bytes = memoryCost(value);
        expect(Number.isSafeInteger(bytes) && bytes > 0, String(bytes)).to.equal(true);
      }
    });

    it('lets a stream carry such values with the default cost; only a user cost that throws errors it', () => {
      const tracker = roomy();
      const { proxy: revoked, revoke } = Proxy.revocable({}, {});
      revoke();
      const log: unknown[] = [];
      record(log, of<unknown[]>(revoked, 1).pipe(memquota(tracker.newAccount(), { scheduler: queueScheduler })));
      // (chai cannot print a revoked Proxy: compare by identity)
      expect(log.length === 3 && log[0] === revoked && log[1] === 1 && log[2] === 'complete').to.equal(true);
      const failing: unknown[] = [];
      record(
        failing,
        of(1).pipe(
          memquota(tracker.newAccount(), {
            cost: () => {
              throw new Error('user cost');
            },
          }),
        ),
      );
      expect(failing).to.deep.equal(['error user cost']);
      expectBooks(tracker);
    });
  });
});
