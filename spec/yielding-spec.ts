/**
 * Reclamation yields between batches and stays exact and oldest-first meanwhile (issue 11),
 * driven by a virtual `yieldScheduler` so that every yield is deterministic.
 */
import { expect } from 'chai';
import { VirtualTimeScheduler } from 'rxjs';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import { BATCH_VICTIMS } from '../lib/reclamation.js';
import { ConfigError } from '../lib/errors.js';
import { FakeClock, TestParticipant, expectBooks, join, recordEvents, turns, victimIds } from './helpers/books.js';

describe('reclamation yields between batches (issue 11)', () => {
  const ACCOUNTS = 3 * BATCH_VICTIMS;

  function world() {
    const clock = new FakeClock(10_000);
    const yields = new VirtualTimeScheduler();
    const tracker = MemoryQuotaTracker.create({ max: ACCOUNTS * 100, lowWater: 100 * BATCH_VICTIMS }, { now: clock.now, yieldScheduler: yields });
    const events = recordEvents(tracker);
    const ps: TestParticipant[] = [];
    // Ages 1 … ACCOUNTS, one account each: account k is the k-th oldest.
    const accounts = Array.from({ length: ACCOUNTS }, (_, k) => {
      const account = tracker.newAccount();
      join(account, ps, k + 1).claim(100);
      return account;
    });
    return { clock, yields, tracker, events, ps, accounts };
  }

  it(`asks ${BATCH_VICTIMS} victims per batch and yields through the yieldScheduler in between`, async () => {
    const { yields, tracker, events, ps, accounts } = world();
    expectBooks(tracker, ps);
    ps[0]!.claim(1); // crosses max
    await turns(1);
    expect(tracker.stats.victims, 'the first batch').to.equal(BATCH_VICTIMS);
    expect(yields.actions.length, 'one yield pending').to.equal(1);
    expectBooks(tracker, ps);
    let batches = 1;
    while (yields.actions.length > 0) {
      yields.flush();
      await turns(1);
      batches++;
      expectBooks(tracker, ps);
    }
    await tracker.settled();
    expect(batches).to.be.at.least(3);
    expect(tracker.used).to.be.at.most(tracker.lowWater);
    expect(victimIds(events)).to.deep.equal(accounts.slice(0, victimIds(events).length).map((a) => a.id));
    expectBooks(tracker, ps);
  });

  it('books claims and releases that arrive between batches, and takes an account with older data first', async () => {
    const { yields, tracker, events, ps, accounts } = world();
    ps[0]!.claim(1);
    await turns(1);
    expect(tracker.stats.victims).to.equal(BATCH_VICTIMS);
    // Between batches: a release and a claim are booked at once...
    const young = ps[ACCOUNTS - 1]!;
    young.release(50);
    young.claim(20);
    expectBooks(tracker, ps);
    // ...and an account joins with data older than every remaining candidate.
    const old = tracker.newAccount();
    join(old, ps, 0).claim(100);
    expectBooks(tracker, ps);
    while (yields.actions.length > 0) {
      yields.flush();
      await turns(1);
      expectBooks(tracker, ps);
    }
    await tracker.settled();
    const order = victimIds(events);
    expect(order[BATCH_VICTIMS], 'the old newcomer is the next victim').to.equal(old.id);
    expect(order.slice(BATCH_VICTIMS + 1)).to.deep.equal(accounts.slice(BATCH_VICTIMS, BATCH_VICTIMS + order.length - BATCH_VICTIMS - 1).map((a) => a.id));
    expect(tracker.used).to.be.at.most(tracker.lowWater);
    expectBooks(tracker, ps);
  });

  it('stops between batches when the tracker shuts down', async () => {
    const { yields, tracker, events, ps } = world();
    ps[0]!.claim(1);
    await turns(1);
    const victims = events.filter((e) => e.type === 'victim').length;
    tracker.shutdown();
    yields.flush();
    await turns(1);
    await tracker.settled();
    expect(tracker.stats.victims, 'no victim after the shutdown').to.equal(BATCH_VICTIMS);
    expect(victims).to.equal(BATCH_VICTIMS);
    expect(tracker.used).to.equal(0);
    expectBooks(tracker, [], { accounts: 0, participants: 0 });
  });

  it('rejects a yieldScheduler that is not a scheduler', () => {
    expect(() => MemoryQuotaTracker.create({ max: 1000 }, { yieldScheduler: {} as VirtualTimeScheduler }))
      .to.throw(ConfigError, /yieldScheduler must be an RxJS SchedulerLike/)
      .with.property('fields')
      .that.deep.equals(['yieldScheduler']);
  });

  it('without a yieldScheduler, yields macrotasks: a timer set before the run fires before it ends', async () => {
    const tracker = MemoryQuotaTracker.create({ max: 10_000 * 100, lowWater: 100 });
    const ps: TestParticipant[] = [];
    for (let k = 0; k < 10_000; k++) join(tracker.newAccount(), ps, k).claim(100);
    let fired = false;
    let victimsWhenFired = -1;
    setImmediate(() => {
      fired = true;
      victimsWhenFired = tracker.stats.victims;
    });
    ps[0]!.claim(1);
    await tracker.settled();
    expect(fired).to.equal(true);
    expect(victimsWhenFired, 'the event loop turned while the run went on').to.be.below(tracker.stats.victims);
    expectBooks(tracker, ps);
  });
});
