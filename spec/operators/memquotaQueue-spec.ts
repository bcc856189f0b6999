import { expect } from 'chai';
import { Observable, from, interval, map, mergeMap, of, take, toArray } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, memquotaQueue } from '../../index.js';
import { expectBooks } from '../helpers/books.js';
import { marbleScheduler, virtualTracker } from '../helpers/marbles.js';

const MiB = 1024 * 1024;

function quota(max = 20 * MiB, lowWater = 15 * MiB, now?: () => number): MemoryQuotaTracker {
  return MemoryQuotaTracker.create({ max, lowWater }, now ? { now } : {});
}

describe('memquotaQueue', () => {
  describe('as a channel', () => {
    it('should hand values to an Observable receiver in marble time', () => {
      const testScheduler = marbleScheduler();
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const tracker = virtualTracker(testScheduler);
        const { sender, receiver } = memquotaQueue<string>(tracker.newAccount());
        const e1 = hot('  --a--b--c--|');
        const e1subs = '  ^----------!';
        const expected = '--a--b--c--|';
        e1.subscribe(sender);
        expectObservable(receiver).toBe(expected);
        expectSubscriptions(e1.subscriptions).toBe(e1subs);
      });
    });

    it('should not break unsubscription chains when the receiver is unsubscribed explicitly', () => {
      const testScheduler = marbleScheduler();
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const tracker = virtualTracker(testScheduler);
        const { sender, receiver } = memquotaQueue<string>(tracker.newAccount());
        const e1 = hot('  --a--b--c--d--|');
        const e1subs = '  ^-------!      ';
        const unsub = '   --------!      ';
        const expected = '--a--b---      ';
        e1.pipe(mergeMap((x) => of(x))).subscribe(sender);
        const result = receiver.pipe(mergeMap((x) => of(x)));
        expectObservable(result, unsub).toBe(expected);
        expectSubscriptions(e1.subscriptions).toBe(e1subs); // leaving the receiver stops the producer
        testScheduler.schedule(() => expectBooks(tracker, undefined, { participants: 0 }), 10);
      });
    });

    it('should stop a synchronous source when the receiver leaves', () => {
      const tracker = quota(1000, 750);
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => 1 });
      const got: number[] = [];
      receiver.pipe(take(3)).subscribe((v) => got.push(v));
      const sideEffects: number[] = [];
      new Observable<number>((subscriber) => {
        for (let i = 0; !subscriber.closed && i < 10; i++) {
          sideEffects.push(i);
          subscriber.next(i);
        }
      }).subscribe(sender);
      expect(got).to.deep.equal([0, 1, 2]);
      expect(sideEffects).to.deep.equal([0, 1, 2]);
      expect(sender.closed).to.equal(true);
      expectBooks(tracker, undefined, { participants: 0 });
    });

    it('should end the channel when the producer unsubscribes the sender', async () => {
      const tracker = quota(1000, 750);
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => 1 });
      const producer = interval(1).subscribe(sender);
      const got: number[] = [];
      const done = new Promise<void>((resolve) => receiver.subscribe({ next: (v) => got.push(v), complete: resolve }));
      await new Promise((resolve) => setTimeout(resolve, 10));
      producer.unsubscribe(); // the subscription is the sender itself
      await done;
      expect(sender.closed).to.equal(true);
      expect(got.length).to.be.greaterThan(0);
      expect(got).to.deep.equal([...Array(got.length).keys()]);
      expectBooks(tracker, undefined, { participants: 0 });
    });

    it('should buffer what is sent before a consumer comes, claimed until it is taken', async () => {
      const tracker = quota(1000, 750);
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => 10 });
      for (let i = 0; i < 5; i++) sender.next(i);
      sender.complete();
      expect(tracker.used).to.equal(50);
      expectBooks(tracker);
      const seen: [number, number][] = [];
      for await (const v of receiver) {
        seen.push([v, tracker.used]);
        expectBooks(tracker);
      }
      expect(seen).to.deep.equal([
        [0, 40],
        [1, 30],
        [2, 20],
        [3, 10],
        [4, 0],
      ]);
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
    });

    it('should let a for-await consumer pull at its own pace', async () => {
      const tracker = quota(1 * MiB, 512 * 1024);
      const { sender, receiver } = memquotaQueue<number>(() => tracker.newAccount(), { cost: () => 100 });
      const producer = interval(1).pipe(take(20)).subscribe(sender);
      const got: number[] = [];
      let peak = 0;
      for await (const v of receiver) {
        got.push(v);
        peak = Math.max(peak, tracker.used);
        await new Promise((resolve) => setTimeout(resolve, 3)); // a slow write
        expectBooks(tracker);
      }
      producer.unsubscribe();
      expect(got).to.deep.equal([...Array(20).keys()]);
      expect(peak).to.be.greaterThan(0); // values really waited, claimed
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should free the channel when the consumer leaves the loop', async () => {
      const tracker = quota(1000, 750);
      const { sender, receiver } = memquotaQueue<number>(() => tracker.newAccount(), { cost: () => 10 });
      for (let i = 0; i < 5; i++) sender.next(i);
      for await (const v of receiver) {
        if (v === 1) break;
      }
      expect(sender.closed).to.equal(true);
      sender.next(99); // dropped, no throw
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should deliver a sender error after the queued values', async () => {
      const tracker = quota(1000, 750);
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => 10 });
      sender.next(1);
      sender.next(2);
      sender.error(new Error('producer failed'));
      const got: number[] = [];
      let error: unknown;
      try {
        for await (const v of receiver) got.push(v);
      } catch (err) {
        error = err;
      }
      expect(got).to.deep.equal([1, 2]);
      expect((error as Error).message).to.equal('producer failed');
      expectBooks(tracker, undefined, { participants: 0 });
    });

    it('should take one consumer at a time', () => {
      const tracker = quota(1000, 750);
      const { receiver } = memquotaQueue<number>(tracker.newAccount());
      receiver.subscribe();
      let error: unknown;
      receiver.subscribe({ error: (e) => (error = e) });
      expect(error).to.be.instanceOf(TypeError);
      expectBooks(tracker);
    });

    it('should absorb values the consumer sends back while it handles one', () => {
      const tracker = quota(1000, 750);
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => 10 });
      const seen: number[] = [];
      let usedInside = -1;
      receiver.subscribe((v) => {
        seen.push(v);
        if (v === 1) {
          sender.next(2);
          sender.next(3);
          usedInside = tracker.used;
        }
      });
      sender.next(1);
      expect(seen).to.deep.equal([1, 2, 3]);
      expect(usedInside).to.equal(20);
      expectBooks(tracker);
    });
  });

  describe('under reclamation', () => {
    it('should collapse when a stalled consumer lets it fill: sender drops, receiver errors', async () => {
      const tracker = quota();
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => MiB });
      const iterator = receiver[Symbol.asyncIterator]();
      for (let i = 0; i < 21; i++) sender.next(i);
      expect(tracker.used).to.equal(21 * MiB);
      await tracker.settled();
      expect(sender.closed).to.equal(true);
      expect(() => sender.next(99)).not.to.throw();
      expect(tracker.used).to.equal(0);
      let error: unknown;
      await iterator.next().catch((e) => (error = e));
      expect(error).to.be.instanceOf(MemoryReclaimedError);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should error an Observable receiver that is waiting', async () => {
      const tracker = quota();
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => MiB });
      for (let i = 0; i < 21; i++) sender.next(i);
      await tracker.settled();
      let error: unknown;
      receiver.subscribe({ error: (e) => (error = e) });
      expect(error).to.be.instanceOf(MemoryReclaimedError);
      expectBooks(tracker);
    });

    it("should keep the newest values with onReclaim: 'drop-oldest'", async () => {
      let clock = 0;
      const tracker = quota(20 * MiB, 15 * MiB, () => clock++);
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => MiB, onReclaim: 'drop-oldest' });
      for (let i = 0; i < 21; i++) sender.next(i);
      await tracker.settled();
      sender.complete();
      expect(sender.closed).to.equal(true);
      const got = await new Promise<number[]>((resolve) => receiver.pipe(toArray()).subscribe(resolve));
      expect(got).to.deep.equal([...Array(15).keys()].map((i) => i + 6));
      expect(tracker.used).to.equal(0);
      expectBooks(tracker);
    });
  });

  describe('faults', () => {
    it('should end the channel with the error of a throwing cost, leaking nothing', async () => {
      const tracker = quota(1000, 750);
      const { sender, receiver } = memquotaQueue<number>(() => tracker.newAccount(), {
        cost: (v) => {
          if (v === 2) throw new Error('bad cost');
          return 10;
        },
      });
      sender.next(1);
      sender.next(2);
      expect(sender.closed).to.equal(true);
      const log: unknown[] = [];
      await new Promise<void>((resolve) =>
        receiver.subscribe({ next: (v) => log.push(v), error: (e: Error) => (log.push(e.message), resolve()) }),
      );
      expect(log).to.deep.equal([1, 'bad cost']);
      expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
    });

    it('should reject a non-account and bad options at once', () => {
      expect(() => memquotaQueue(null as never)).to.throw(TypeError);
      const tracker = quota(1000, 750);
      expect(() => memquotaQueue(tracker.newAccount(), { onReclaim: 'x' as never })).to.throw(TypeError);
      expect(() => memquotaQueue(() => 5 as never)).to.throw(TypeError, /factory must return an Account/);
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
    });

    it('should work as a sink of any Observable and a source of any pipeline', async () => {
      const tracker = quota(1000, 750);
      const { sender, receiver } = memquotaQueue<number>(tracker.newAccount(), { cost: () => 1 });
      from([1, 2, 3]).subscribe(sender);
      const doubled = await new Promise<number[]>((resolve) => receiver.pipe(map((x) => x * 2), toArray()).subscribe(resolve));
      expect(doubled).to.deep.equal([2, 4, 6]);
      expectBooks(tracker);
    });
  });
});
