/**
 * The operators under reentrant and hostile callbacks (issue 13, operator items): a value is
 * stored before it is claimed, a stopped subscriber is never notified, a push into a stream
 * whose share is already gone ends it with `MemoryReclaimedError`, and `memquotaQueue`'s
 * iterators settle and own the channel by a clear rule.
 */
import { expect } from 'chai';
import { NEVER, Subject, Subscriber, VirtualTimeScheduler, config, queueScheduler, type Observable, type Subscription } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, memquota, memquotaMap, memquotaQueue, type Account, type MemquotaEvent } from '../../index.js';
import { expectBooks, FakeClock, recordEvents } from '../helpers/books.js';

/** Subscribes and logs every notification (values, `error <name>`, `complete`). */
function record<T>(log: unknown[], source: Observable<T>): Subscription {
  return source.subscribe({
    next: (v) => log.push(v),
    error: (e: unknown) => log.push(e),
    complete: () => log.push('complete'),
  });
}

type Kind = 'memquota' | 'memquotaMap' | 'memquotaQueue';
const kinds: readonly Kind[] = ['memquota', 'memquotaMap', 'memquotaQueue'];

/**
 * A stream of each kind on `account` whose values are held (claimed) until `flush()`:
 * `memquota` behind a stalled scheduler, `memquotaMap` with inners that wait, `memquotaQueue`
 * with no consumer yet. `started` lists the values in the order they began to be handled.
 */
function heldStream(kind: Kind, account: Account | (() => Account), cost: (v: string) => number) {
  const source = new Subject<string>();
  const log: unknown[] = [];
  const started: string[] = [];
  if (kind === 'memquota') {
    const stalled = new VirtualTimeScheduler();
    const subscription = record(log, source.pipe(memquota(account, { scheduler: stalled, cost })));
    return { push: (v: string) => source.next(v), log, started: log, subscription, flush: () => stalled.flush() };
  }
  if (kind === 'memquotaMap') {
    const gate = new Subject<void>();
    const subscription = record(
      log,
      source.pipe(
        memquotaMap(
          account,
          (v) => {
            started.push(v);
            return new Subject<string>().pipe((inner) => inner) as Observable<string>;
          },
          { cost },
        ),
      ),
    );
    return { push: (v: string) => source.next(v), log, started, subscription, flush: () => gate.next() };
  }
  const { sender, receiver } = memquotaQueue<string>(account, { cost });
  // The consumer exists before it subscribes, so that a callback can unsubscribe it while the
  // channel delivers inside subscribe(). (The Subscriber constructor is deprecated for
  // operators, fine in a spec.)
  const consumer = new Subscriber<string>({
    next: (v) => log.push(v),
    error: (e: unknown) => log.push(e),
    complete: () => log.push('complete'),
  });
  return { push: (v: string) => sender.next(v), log, started: log, subscription: consumer as Subscription, flush: () => void receiver.subscribe(consumer) };
}

describe('operators under reentrant callbacks', () => {
  describe('a value is stored before it is claimed (issue 13 item 6)', () => {
    for (const kind of kinds) {
      it(`${kind}: with queueScheduler, a fresh stream whose value crosses max is a candidate itself`, () => {
        const clock = new FakeClock(1);
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { scheduler: queueScheduler, now: clock.now });
        const events = recordEvents(tracker);
        const innocent = heldStream(kind, () => tracker.newAccount(), (v) => v.length);
        innocent.push('i'.repeat(300));
        expect(tracker.used).to.equal(300);
        clock.advance(10);
        const fresh = heldStream(kind, () => tracker.newAccount(), (v) => v.length);
        fresh.push('f'.repeat(800)); // 1100 > max: reclamation runs inside this claim
        expect(tracker.used).to.be.at.most(tracker.lowWater);
        fresh.flush(); // (a channel tells its consumer when one comes)
        expect(fresh.log.some((x) => x instanceof MemoryReclaimedError && x.reason === 'reclaimed')).to.equal(true);
        expect(events.filter((e: MemquotaEvent) => e.type === 'participant-error')).to.deep.equal([]);
        expectBooks(tracker);
        innocent.subscription.unsubscribe();
      });

      it(`${kind}: with queueScheduler, a fresh stream whose one value passes max by more than NO_DATA_SLOP is reclaimed, not faulted`, () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { scheduler: queueScheduler });
        const events = recordEvents(tracker);
        const fresh = heldStream(kind, () => tracker.newAccount(), (v) => v.length);
        fresh.push('f'.repeat(5000));
        expect(tracker.used).to.equal(0);
        fresh.flush();
        expect(events.filter((e: MemquotaEvent) => e.type === 'participant-error')).to.deep.equal([]);
        expect(fresh.log.some((x) => x instanceof MemoryReclaimedError && x.reason === 'reclaimed')).to.equal(true);
        expectBooks(tracker, undefined, { participants: 0 });
      });

      it(`${kind}: a pressure$ subscriber that pushes into the stream on 'high' has its value handled after the one that crossed`, () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 900 });
        const stream = heldStream(kind, tracker.newAccount(), (v) => v.length);
        let pushed = false;
        tracker.pressure$.subscribe((level) => {
          if (level === 'high' && !pushed) {
            pushed = true;
            stream.push('after');
          }
        });
        stream.push('b'.repeat(950));
        stream.flush();
        expect(stream.started.map((v) => (typeof v === 'string' ? v.slice(0, 5) : v))).to.deep.equal(kind === 'memquotaMap' ? ['bbbbb'] : ['bbbbb', 'after']);
        expectBooks(tracker);
        stream.subscription.unsubscribe();
        expect(tracker.used).to.equal(0);
      });
    }
  });

  describe('a stopped subscriber is never notified (issue 13 item 9)', () => {
    let stopped: string[];
    // RxJS reports a stopped notification through a timeout.
    const stoppedReported = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));
    let saved: typeof config.onStoppedNotification;
    beforeEach(() => {
      stopped = [];
      saved = config.onStoppedNotification;
      config.onStoppedNotification = (notification) => stopped.push(notification.kind);
    });
    afterEach(() => {
      config.onStoppedNotification = saved;
    });

    it('memquota: a collapsed$ subscriber of its own account that unsubscribes the stream as it completes', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const source = new Subject<number>();
      const log: unknown[] = [];
      const subscription: Subscription = record(
        log,
        source.pipe(
          memquota(() => {
            const account = tracker.newAccount();
            account.collapsed$.subscribe(() => subscription.unsubscribe());
            return account;
          }),
        ),
      );
      source.next(1);
      source.complete();
      await stoppedReported();
      expect(stopped).to.deep.equal([]);
      expect(log).to.deep.equal([1, 'complete']);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it("memquotaMap: an events$ subscriber that unsubscribes the stream at its account's collapse", async () => {
      const tracker = MemoryQuotaTracker.create({ max: 100, lowWater: 50 }, { scheduler: queueScheduler });
      const source = new Subject<number>();
      const log: unknown[] = [];
      let accountId = -1;
      const subscription = record(
        log,
        source.pipe(
          memquotaMap(
            () => {
              const account = tracker.newAccount();
              accountId = account.id;
              return account;
            },
            () => NEVER,
            { cost: () => 60 },
          ),
        ),
      );
      tracker.events$.subscribe((e) => {
        if (e.type === 'collapse' && e.account === accountId) subscription.unsubscribe();
      });
      source.next(1);
      source.next(2); // 120 > max: reclaimed
      await stoppedReported();
      expect(stopped).to.deep.equal([]);
      expect(log).to.have.length(1);
      expect(log[0]).to.be.instanceOf(MemoryReclaimedError);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    for (const kind of ['memquota', 'memquotaQueue'] as const) {
      it(`${kind}: a pressure$ subscriber that unsubscribes the stream when a delivery's release brings pressure back to normal`, async () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 900 });
        const stream = heldStream(kind, tracker.newAccount(), () => 460);
        stream.push('a');
        stream.push('b'); // 920 > softMax: 'high'
        tracker.pressure$.subscribe((level) => {
          if (level === 'normal') stream.subscription.unsubscribe();
        });
        stream.flush(); // releasing 'a' brings used to 460 ≤ lowWater: 'normal'
        await stoppedReported();
        expect(stopped).to.deep.equal([]);
        expect(stream.log).to.deep.equal([]);
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { participants: 0 });
      });
    }
  });

  describe('a push into a stream whose share is gone ends it with MemoryReclaimedError (issue 13 item 10)', () => {
    for (const kind of kinds) {
      it(`${kind}: pushed during its shared account's collapse event: reason 'closed'`, () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
        const account = tracker.newAccount();
        const accountId = account.id;
        const stream = heldStream(kind, account, () => 10);
        stream.push('a');
        tracker.events$.subscribe((e) => {
          if (e.type === 'collapse' && e.account === accountId) stream.push('during');
        });
        account.close();
        stream.flush();
        const errors = stream.log.filter((x) => x instanceof Error);
        expect(errors).to.have.length(1);
        expect(errors[0]).to.be.instanceOf(MemoryReclaimedError).with.property('reason', 'closed');
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      });

      it(`${kind}: pushed during tracker.shutdown(): reason 'tracker-shutdown'`, () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
        const stream = heldStream(kind, tracker.newAccount(), () => 10);
        const other = tracker.newAccount(); // torn down first: the push comes before our own tear-down
        tracker.events$.subscribe((e) => {
          if (e.type === 'collapse') stream.push('during');
        });
        void other;
        tracker.shutdown();
        stream.flush();
        const errors = stream.log.filter((x) => x instanceof Error);
        expect(errors).to.have.length(1);
        expect(errors[0]).to.be.instanceOf(MemoryReclaimedError).with.property('reason', 'tracker-shutdown');
      });
    }
  });

  describe('memquotaQueue iterators (issue 13 item 8)', () => {
    it('settles a pending next() with done when the same iterator returns', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount());
      const iterator = receiver[Symbol.asyncIterator]();
      const pending = iterator.next();
      expect(await iterator.return!()).to.deep.equal({ value: undefined, done: true });
      expect(await pending).to.deep.equal({ value: undefined, done: true });
      expect(sender.closed).to.equal(true);
      expectBooks(tracker, undefined, { participants: 0 });
    });

    it("does not free the channel under a subscribed consumer when another iterator returns", async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => 10 });
      const log: unknown[] = [];
      record(log, receiver);
      const stranger = receiver[Symbol.asyncIterator]();
      expect(await stranger.return!()).to.deep.equal({ value: undefined, done: true });
      expect(sender.closed).to.equal(false);
      sender.next(1);
      sender.complete();
      expect(log).to.deep.equal([1, 'complete']);
      expect(await stranger.next()).to.deep.equal({ value: undefined, done: true });
      expectBooks(tracker, undefined, { participants: 0 });
    });

    it('keeps the channel with the iterator that pulled first: a second iterator is refused, its return() changes nothing', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => 10 });
      sender.next(1);
      sender.next(2);
      const first = receiver[Symbol.asyncIterator]();
      expect(await first.next()).to.deep.equal({ value: 1, done: false });
      const second = receiver[Symbol.asyncIterator]();
      let refused: unknown;
      await second.next().catch((err: unknown) => (refused = err));
      expect(refused).to.be.instanceOf(TypeError);
      await second.return!();
      expect(sender.closed).to.equal(false);
      expect(tracker.used).to.equal(10);
      expect(await first.next()).to.deep.equal({ value: 2, done: false });
      await first.return!();
      expect(sender.closed).to.equal(true);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { participants: 0 });
    });
  });

  describe('cost errors (issue 13 item 12)', () => {
    it("keeps the type of a bad cost answer in the message ('12' is not 12)", () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const log: unknown[] = [];
      const source = new Subject<number>();
      record(log, source.pipe(memquota(tracker.newAccount(), { scheduler: queueScheduler, cost: () => '12' as unknown as number })));
      source.next(1);
      expect(log).to.have.length(1);
      expect((log[0] as Error).message).to.equal('cost returned "12": it must be a non-negative safe integer of bytes');
      expectBooks(tracker);
    });

    for (const kind of kinds) {
      it(`${kind}: a bad cost answer ends the stream after the values it holds (in order)`, () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
        const stream = heldStream(kind, tracker.newAccount(), (v) => (v === 'bad' ? -1 : 10));
        stream.push('a');
        stream.push('b');
        stream.push('bad');
        stream.flush();
        const shown = stream.log.map((x) => (x instanceof Error ? x.name : x));
        // memquotaMap starts 'a' at once (its inner never ends); an error ends the whole map.
        expect(shown).to.deep.equal(kind === 'memquotaMap' ? ['RangeError'] : ['a', 'b', 'RangeError']);
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { participants: 0 });
      });
    }
  });

  describe('MemoryReclaimedError', () => {
    it('is built without a stack capture, keeping name, message, reason and instanceof', () => {
      const err = new MemoryReclaimedError('closed');
      expect(err).to.be.instanceOf(MemoryReclaimedError).and.instanceOf(Error);
      expect(err.name).to.equal('MemoryReclaimedError');
      expect(err.reason).to.equal('closed');
      expect(err.message).to.equal('the memory quota account of this stream was closed');
      expect(err.stack).to.equal(`MemoryReclaimedError: ${err.message}`);
      expect(new Error('x').stack).to.include('\n    at '); // the limit is put back
    });
  });
});
