import { expect } from 'chai';
import { EventEmitter, once } from 'node:events';
import { queueScheduler } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, type MemquotaEvent } from '../index.js';
import { TestParticipant, expectBooks, join, recordEvents } from './helpers/books.js';

describe('what an operator of the fleet can observe of an account', () => {
  it('account.used is what its own participants hold (children not included), 0 once gone', () => {
    const tracker = MemoryQuotaTracker.create({ max: 10_000 });
    const ps: TestParticipant[] = [];
    const parent = tracker.newAccount();
    const child = parent.newChild();
    join(parent, ps, 1).claim(300);
    join(child, ps, 2).claim(200);
    expectBooks(tracker, ps);
    expect([parent.used, child.used]).to.deep.equal([300, 200]);
    ps[0]!.release(100);
    expectBooks(tracker, ps);
    expect(parent.used).to.equal(200);
    const weak = child.clone();
    child.close();
    expect(weak.used).to.equal(200);
    weak.close();
    ps[1]!.collapse();
    expectBooks(tracker, ps);
    expect(() => weak.used).to.throw(/closed/);
  });

  it('names accounts (newAccount({ name }), newChild({ name })) and carries the name on events', async () => {
    let now = 0;
    const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { scheduler: queueScheduler, now: () => now });
    const events = recordEvents(tracker);
    const ps: TestParticipant[] = [];
    const server = tracker.newAccount({ name: 'server' });
    const conn = server.newChild({ name: 'conn 7' });
    const anonymous = tracker.newAccount({ parent: server });
    expect([server.name, conn.name, anonymous.name]).to.deep.equal(['server', 'conn 7', undefined]);
    join(conn, ps, 1).claim(600);
    join(anonymous, ps, 5).claim(100);
    expectBooks(tracker, ps);
    now = 7;
    join(server, ps, 3).claim(400); // crosses max: the oldest, 'conn 7', goes first
    ps[0]!.collapse();
    await tracker.settled();
    expectBooks(tracker, ps);
    const victim = events.find((e): e is Extract<MemquotaEvent, { type: 'victim' }> => e.type === 'victim');
    expect(victim).to.include({ account: conn.id, name: 'conn 7' });
    const collapse = events.find((e) => e.type === 'collapse');
    expect(collapse).to.include({ account: conn.id, name: 'conn 7', reason: 'reclaimed' });
    const start = events.find((e) => e.type === 'reclaim-start');
    expect(start).to.include({ cause: 'quota' });
    const end = events.find((e) => e.type === 'reclaim-end');
    expect(end).to.include({ durationMs: 0 }); // the virtual clock did not move during the run
    anonymous.close();
    const anonymousCollapse = events.filter((e) => e.type === 'collapse').at(-1);
    expect(anonymousCollapse).to.not.have.property('name');
  });

  it('rejects a name that is not a string, and changes nothing', () => {
    const tracker = MemoryQuotaTracker.create({ max: 10_000 });
    expect(() => tracker.newAccount({ name: 42 as unknown as string })).to.throw(TypeError, /name must be a string, got number/);
    const root = tracker.newAccount();
    expect(() => root.newChild({ name: null as unknown as string })).to.throw(TypeError, /name must be a string, got object/);
    expect(() => root.newChild(7 as unknown as { name: string })).to.throw(TypeError, /newChild options must be an object/);
    expectBooks(tracker, [], { accounts: 1, participants: 0 });
  });

  describe('account.signal', () => {
    for (const [how, end, reason] of [
      ['reclaimed', 'reclaim', 'reclaimed'],
      ['closed', 'close', 'closed'],
      ['shut down with its tracker', 'shutdown', 'tracker-shutdown'],
    ] as const) {
      it(`aborts with a MemoryReclaimedError('${reason}') when the account is ${how}`, async () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
        const ps: TestParticipant[] = [];
        const account = tracker.newAccount();
        const signal = account.signal;
        expect(account.signal).to.equal(signal); // one per account
        let heard: unknown;
        signal.addEventListener('abort', () => (heard = signal.reason));
        const p = join(account, ps, 1);
        p.claim(100);
        expect(signal.aborted).to.equal(false);
        if (end === 'reclaim') {
          p.claim(1000);
          await tracker.settled();
        } else if (end === 'close') account.close();
        else tracker.shutdown();
        p.collapse();
        if (end !== 'shutdown') expectBooks(tracker, ps);
        expect(signal.aborted).to.equal(true);
        expect(heard).to.be.instanceOf(MemoryReclaimedError);
        expect((heard as MemoryReclaimedError).reason).to.equal(reason);
      });
    }

    it('is already aborted when asked for after the tear-down (through another handle)', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000 });
      const account = tracker.newAccount();
      const weak = account.downgrade();
      const other = account.clone();
      account.close();
      expect(other.signal.aborted).to.equal(false);
      other.close();
      expect(weak.closed).to.equal(true);
      expectBooks(tracker, [], { accounts: 0, participants: 0 });
    });

    it('ends an await on it, e.g. events.once(emitter, name, { signal })', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000 });
      const account = tracker.newAccount();
      const waiting = once(new EventEmitter(), 'drain', { signal: account.signal });
      account.close();
      const err = await waiting.then(() => undefined, (e: unknown) => e);
      expect(err).to.have.property('name', 'AbortError');
      expect((err as { cause?: unknown }).cause).to.be.instanceOf(MemoryReclaimedError);
      expectBooks(tracker, [], { accounts: 0, participants: 0 });
    });
  });
});
