import { expect } from 'chai';
import { mergeMap, Observable, of, Subject, take } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { MemoryQuotaTracker } from '../../index.js';
import { PressureError, shedOnPressure } from '../../operators/shedOnPressure.js';
import { expectBooks, TestParticipant } from '../helpers/books.js';
import { marbleScheduler, plain, virtualTracker } from '../helpers/marbles.js';


describe('shedOnPressure', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = marbleScheduler();
  });

  /**
   * A tracker (max 100, lowWater 50, softMax 80) on the virtual clock, with one participant
   * whose claims drive the pressure, and a view of the tracker that counts live subscriptions
   * to `pressure$`.
   */
  function setup() {
    const tracker = virtualTracker(testScheduler, { max: 100, lowWater: 50, softMax: 80 });
    const load = new TestParticipant();
    load.participation = tracker.newAccount().registerParticipant(load);
    const watch = { pressureSubscriptions: 0 };
    const counted = new Observable<'normal' | 'high'>((subscriber) => {
      watch.pressureSubscriptions++;
      const inner = tracker.pressure$.subscribe(subscriber);
      return () => {
        watch.pressureSubscriptions--;
        inner.unsubscribe();
      };
    });
    // Same tracker, but pressure$ counted (still a MemoryQuotaTracker for the operator).
    const watched = Object.create(tracker, { pressure$: { value: counted } }) as MemoryQuotaTracker;
    const at = (frame: number, work: () => void) => testScheduler.schedule(work, frame);
    return { tracker, load, watched, watch, at };
  }

  describe('creation', () => {
    it('rejects a tracker that is not a MemoryQuotaTracker', () => {
      expect(() => shedOnPressure({} as MemoryQuotaTracker)).to.throw(TypeError, /MemoryQuotaTracker/);
      expect(() => shedOnPressure(null as unknown as MemoryQuotaTracker)).to.throw(TypeError, /MemoryQuotaTracker/);
    });

    it('rejects an unknown mode', () => {
      const tracker = MemoryQuotaTracker.create({ max: 100 });
      expect(() => shedOnPressure(tracker, { mode: 'block' as 'drop' })).to.throw(TypeError, /mode/);
      expect(() => shedOnPressure(tracker, { mode: 'drop' })).not.to.throw();
      expect(() => shedOnPressure(tracker, { mode: 'error' })).not.to.throw();
    });
  });

  it('drops the values that arrive while pressure is high (default mode)', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const { load, watched, watch, at } = setup();
      // Claim 90 at 2 (high); release 30 at 8 (60: still high, above lowWater); release 20 at
      // 12 (40: normal again).
      // pressure:          --h---------n     h = 'high', n = 'normal'
      const source = hot('  -a-b-c-d-e-f-g-h-|');
      const subs = '        ^----------------!';
      const expected = '    -a-----------g-h-|';
      at(2, () => load.claim(90, 2));
      at(8, () => load.release(30));
      at(12, () => load.release(20));
      at(10, () => expect(watch.pressureSubscriptions).to.equal(1));
      expectObservable(source.pipe(shedOnPressure(watched))).toBe(expected);
      expectSubscriptions(source.subscriptions).toBe(subs);
      testScheduler.flush();
      expect(watch.pressureSubscriptions).to.equal(0);
    });
  });

  it("errors with PressureError in mode 'error' when a value arrives while pressure is high", () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const { tracker, load, watched, watch, at } = setup();
      const source = hot('  -a-b-c-|');
      const subs = '        ^--!     ';
      const expected = '    -a-#     ';
      at(2, () => load.claim(90, 2));
      expectObservable(source.pipe(shedOnPressure(watched, { mode: 'error' }))).toBe(expected, undefined, new PressureError(90, 80));
      expectSubscriptions(source.subscriptions).toBe(subs);
      testScheduler.flush();
      expect(watch.pressureSubscriptions).to.equal(0);
      expectBooks(tracker, [load]);
    });
  });

  it('PressureError names itself and carries the figures', () => {
    const error = new PressureError(950, 900);
    expect(error).to.be.instanceOf(Error);
    expect(error.name).to.equal('PressureError');
    expect(error).to.include({ used: 950, softMax: 900 });
    expect(error.message).to.match(/950.*900/);
  });

  it('sheds from the first value when pressure is already high at subscription', () => {
    const { load, tracker } = setup();
    load.claim(90, 0);
    const values: number[] = [];
    let completed = false;
    of(1, 2, 3)
      .pipe(shedOnPressure(tracker))
      .subscribe({ next: (x) => values.push(x), complete: () => (completed = true) });
    expect(values).to.deep.equal([]);
    expect(completed).to.equal(true);
    let error: unknown;
    of(1).pipe(shedOnPressure(tracker, { mode: 'error' })).subscribe({ error: (e: unknown) => (error = e) });
    expect(plain(error)).to.deep.equal(plain(new PressureError(90, 80)));
  });

  it('subscribes to pressure$ once per subscription and lets go of it on unsubscribe, complete and error', () => {
    const { load, watched, watch } = setup();
    const a = new Subject<number>();
    const b = new Subject<number>();
    const c = new Subject<number>();
    const subA = a.pipe(shedOnPressure(watched)).subscribe();
    b.pipe(shedOnPressure(watched)).subscribe();
    c.pipe(shedOnPressure(watched, { mode: 'error' })).subscribe({ error: () => undefined });
    for (let i = 0; i < 5; i++) a.next(i); // values do not subscribe again
    expect(watch.pressureSubscriptions).to.equal(3);
    subA.unsubscribe();
    expect(watch.pressureSubscriptions).to.equal(2);
    b.complete();
    expect(watch.pressureSubscriptions).to.equal(1);
    load.claim(90, 0);
    c.next(1);
    expect(watch.pressureSubscriptions).to.equal(0);
    expect(c.observed).to.equal(false);
  });

  it('sheds nothing once the tracker is shut down, even if pressure was high', () => {
    const { load, tracker } = setup();
    const source = new Subject<number>();
    const values: number[] = [];
    source.pipe(shedOnPressure(tracker)).subscribe((x) => values.push(x));
    source.next(1);
    load.claim(90, 0);
    source.next(2);
    tracker.shutdown();
    source.next(3);
    expect(values).to.deep.equal([1, 3]);
  });

  it('does not break unsubscription chains when unsubscribed explicitly', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const { load, watched, watch, at } = setup();
      const source = hot('  -a-b-c-d-e-|');
      const unsub = '       ^------!     ';
      const subs = '        ^------!     ';
      const expected = '    -a---c-      ';
      at(2, () => load.claim(90, 2));
      at(4, () => load.release(90));
      const result = source.pipe(
        mergeMap((x) => of(x)),
        shedOnPressure(watched),
        mergeMap((x) => of(x)),
      );
      expectObservable(result, unsub).toBe(expected);
      expectSubscriptions(source.subscriptions).toBe(subs);
      testScheduler.flush();
      expect(watch.pressureSubscriptions).to.equal(0);
    });
  });

  it('should stop listening to a synchronous observable when unsubscribed', () => {
    const { tracker } = setup();
    const sideEffects: number[] = [];
    const synchronousObservable = new Observable<number>((subscriber) => {
      // This will check to see if the subscriber was closed on each loop
      // when the unsubscribe hits (from the `take`), it should be closed
      for (let i = 0; !subscriber.closed && i < 10; i++) {
        sideEffects.push(i);
        subscriber.next(i);
      }
    });
    synchronousObservable.pipe(shedOnPressure(tracker), take(3)).subscribe(() => {
      /* noop */
    });
    expect(sideEffects).to.deep.equal([0, 1, 2]);
  });

  it('sees a pressure change made by its own subscriber (reentrant next)', () => {
    const { load, tracker } = setup();
    const source = new Subject<number>();
    const values: number[] = [];
    source.pipe(shedOnPressure(tracker)).subscribe((x) => {
      values.push(x);
      if (x === 1) {
        load.claim(90, 0); // high
        source.next(2); // shed
        load.release(90); // normal again
        source.next(3); // passes, reentrantly
      }
    });
    source.next(1);
    source.next(4);
    expect(values).to.deep.equal([1, 3, 4]);
    expectBooks(tracker, [load]);
  });

  it('passes everything on a no-op tracker', () => {
    const values: number[] = [];
    of(1, 2, 3)
      .pipe(shedOnPressure(MemoryQuotaTracker.noop(), { mode: 'error' }))
      .subscribe((x) => values.push(x));
    expect(values).to.deep.equal([1, 2, 3]);
  });
});
