/**
 * No participant or callback can hang, brick or fool the tracker (issue 13, core items).
 *
 * Each `describe` names the item; every scenario checks the books after each step.
 */
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { Subject, Subscription, queueScheduler, type SchedulerLike } from 'rxjs';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import { ConfigError, MemquotaError } from '../lib/errors.js';
import { memquota } from '../operators/memquota.js';
import type { MemquotaEvent, Reclaimed } from '../lib/types.js';
import { FakeClock, TestParticipant, expectBooks, join, recordEvents, turns, victimIds } from './helpers/books.js';

/** Resolves `'settled'` when `promise` does within `ms`, else `'timed out'`. */
function within(promise: Promise<unknown>, ms: number): Promise<'settled' | 'timed out'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), ms)));
  return Promise.race([promise.then(() => 'settled' as const), timeout]).finally(() => clearTimeout(timer));
}

function faults(events: readonly MemquotaEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'participant-error' ? [e.fault] : []));
}

/** A scheduler that never runs what it is given (a consumer that never drains). */
const stalled: SchedulerLike = { now: () => 0, schedule: () => new Subscription() } as unknown as SchedulerLike;

describe('hardening (issue 13)', () => {
  describe('1. a reclaim() that never settles', () => {
    it('counts a participant that has not answered by reclaimTimeout as collapsed (reclaim-timeout), and the run goes on', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { reclaimTimeout: 30 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const a = tracker.newAccount();
      const b = tracker.newAccount();
      const stuck = join(a, ps, 0);
      stuck.onReclaim = () => new Promise<Reclaimed>(() => {});
      stuck.claim(600);
      const next = join(b, ps, 10);
      next.claim(600);
      expectBooks(tracker, ps);
      expect(await within(tracker.settled(), 2000)).to.equal('settled');
      expectBooks(tracker, ps, { accounts: 0 });
      expect(stuck.participation.closed).to.equal(true);
      expect(faults(events)).to.deep.equal(['reclaim-timeout']);
      expect(victimIds(events)).to.deep.equal([a.id, b.id]);
      expect(tracker.used).to.equal(0);
      // Later claims start new runs as usual.
      const later = join(tracker.newAccount(), ps, 20);
      later.claim(1200);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
    });

    it('shutdown() resolves settled() even with a never-settling answer and no deadline', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { reclaimTimeout: Infinity });
      const ps: TestParticipant[] = [];
      const stuck = join(tracker.newAccount(), ps, 0);
      stuck.onReclaim = () => new Promise<Reclaimed>(() => {});
      stuck.claim(1200);
      await turns(2);
      expect(stuck.reclaimCalls).to.equal(1);
      const settled = tracker.settled();
      tracker.shutdown();
      expect(await within(settled, 1000)).to.equal('settled');
      expect(await within(tracker.settled(), 1000)).to.equal('settled');
      expect(tracker.used).to.equal(0);
    });

    it('rejects a bad reclaimTimeout with ConfigError', () => {
      for (const bad of [0, -1, NaN, '10', null]) {
        expect(() => MemoryQuotaTracker.create({ max: 1000 }, { reclaimTimeout: bad as number }), String(bad))
          .to.throw(ConfigError, /reclaimTimeout must be a positive number of ms or Infinity/)
          .with.property('fields')
          .that.deep.equals(['reclaimTimeout']);
      }
    });

    it('the deadline timer never keeps the process alive', () => {
      const script = `
        import { MemoryQuotaTracker } from './index.ts';
        const tracker = MemoryQuotaTracker.create({ max: 1000 }, { reclaimTimeout: 60000 });
        const account = tracker.newAccount();
        const p = { getOldest: () => 0, reclaim: () => new Promise(() => {}) };
        account.registerParticipant(p).claim(2000);
        globalThis.keep = p;
      `;
      const started = Date.now();
      const child = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: process.cwd(), timeout: 20_000 });
      expect(child.status, String(child.stderr)).to.equal(0);
      expect(Date.now() - started, 'exited without waiting for the 60 s deadline').to.be.below(15_000);
    });
  });

  describe('2. hostile answers', () => {
    const hostile: [string, () => unknown][] = [
      ['a then getter that throws', () => Object.defineProperty({}, 'then', { get: () => { throw new Error('then getter'); } })],
      ['a revoked Proxy', () => { const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); return proxy; }],
      ['a then that throws when called', () => ({ then: () => { throw new Error('then threw'); } })],
    ];
    for (const [what, make] of hostile) {
      it(`treats ${what} as a participant fault, never tracker corruption`, async () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
        const events = recordEvents(tracker);
        const ps: TestParticipant[] = [];
        const bad = join(tracker.newAccount(), ps, 0);
        bad.onReclaim = () => make() as Reclaimed;
        bad.claim(1200);
        await tracker.settled();
        expectBooks(tracker, ps, { accounts: 0 });
        expect(faults(events)).to.deep.equal(['reclaim-threw']);
        // Still working: a new account, claims, a new run.
        const fine = join(tracker.newAccount(), ps, 1);
        fine.claim(1500);
        await tracker.settled();
        expectBooks(tracker, ps, { accounts: 0 });
        expect(tracker.stats.reclaimRuns).to.equal(2);
      });
    }
  });

  describe('3. no callback before its transaction is complete', () => {
    it('keeps a claim made by an events$ subscriber during the over-release event', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000 });
      const participation = tracker.newAccount().registerParticipant({ getOldest: () => 0, reclaim: () => 'collapsing' });
      tracker.events$.subscribe((e) => {
        if (e.type === 'participant-error') participation.claim(2);
      });
      participation.claim(41);
      participation.release(42);
      expectBooks(tracker);
      expect(tracker.used).to.equal(2);
      expect(participation.claimed).to.equal(2);
    });
  });

  describe('4. rescans while candidates keep appearing', () => {
    it('reclaims data that appears after the first rescan (a chain of participants filling up during the run)', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const ps: TestParticipant[] = [];
      const chain = [0, 1, 2, 3].map((k) => join(tracker.newAccount(), ps, k));
      // Each one, asked to reclaim, frees everything while the next starts holding data.
      for (let k = 0; k < 3; k++) {
        chain[k]!.onReclaim = (self) => {
          self.release(self.held);
          chain[k + 1]!.claim(1001, k + 1);
          self.collapse();
          return 'collapsing';
        };
      }
      chain[0]!.claim(1001, 0);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
      expect(tracker.used).to.be.at.most(tracker.max);
      expect(chain.map((p) => p.reclaimCalls)).to.deep.equal([1, 1, 1, 1]);
    });

    it('ends a run that a refilling participant would keep alive forever', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const refill = join(tracker.newAccount(), ps, 0);
      refill.onReclaim = (self) => {
        const held = self.held;
        self.release(held);
        self.claim(held, tracker.now());
        return 'partial';
      };
      refill.claim(1200);
      expect(await within(tracker.settled(), 2000)).to.equal('settled');
      expectBooks(tracker, ps);
      expect(refill.reclaimCalls).to.be.within(1, 20);
      expect(events.filter((e) => e.type === 'reclaim-end').map((e) => (e as { outcome: string }).outcome)).to.deep.equal(['no-candidate']);
    });
  });

  describe("5. an asynchronous 'partial' from a participant that claimed meanwhile", () => {
    it('puts it back among the candidates', async () => {
      const clock = new FakeClock(100);
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { now: clock.now });
      const ps: TestParticipant[] = [];
      const p = join(tracker.newAccount(), ps, 0);
      p.onReclaim = (self) => {
        if (self.reclaimCalls > 1) {
          self.collapse();
          return 'collapsing';
        }
        return Promise.resolve().then(() => {
          // Takes in new data and frees as much old: a net change of 0, its oldest data newer.
          self.claim(500);
          self.release(500);
          self.oldest = clock.now();
          return 'partial' as const;
        });
      };
      p.claim(1001, 0);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
      expect(p.reclaimCalls).to.equal(2);
      expect(tracker.used).to.be.at.most(tracker.max);
    });
  });

  describe('7. reentrant pressure$', () => {
    it('shows every subscriber the edges in the order they happened, ending on the current state', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 800 });
      const cache = tracker.newAccount().registerParticipant({ getOldest: () => 0, reclaim: () => 'collapsing' });
      const first: string[] = [];
      const second: string[] = [];
      tracker.pressure$.subscribe((state) => {
        first.push(state);
        // Frees its cache on 'high': a nested 'normal' edge.
        if (state === 'high') cache.release(cache.claimed);
      });
      tracker.pressure$.subscribe((state) => second.push(state));
      cache.claim(900);
      expectBooks(tracker);
      expect(tracker.used).to.equal(0);
      expect(first).to.deep.equal(['normal', 'high', 'normal']);
      expect(second).to.deep.equal(['normal', 'high', 'normal']);
    });
  });

  describe('11. a child account under a victim whose answer is pending', () => {
    it('is included in the reclamation: torn down with the victim (reclaimed), its participants told', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const victim = tracker.newAccount();
      const other = tracker.newAccount();
      let answer!: (r: Reclaimed) => void;
      const p = join(victim, ps, 0);
      p.onReclaim = (self) =>
        new Promise<Reclaimed>((resolve) => (answer = resolve)).then((r) => {
          self.release(self.held);
          self.collapse();
          return r;
        });
      p.claim(1200);
      await turns(2);
      expect(p.reclaimCalls).to.equal(1);
      // Opened, or linked, while the victim's answer is pending.
      const child = victim.newChild();
      const grandchild = child.newChild();
      const named = tracker.newAccount({ parent: victim, name: 'late' });
      other.addParent(victim);
      const told: string[] = [];
      const late = new TestParticipant(1);
      late.participation = child.registerParticipant(Object.assign(late, { accountCollapsed: (why: string) => told.push(why) }));
      ps.push(late);
      late.claim(100);
      expectBooks(tracker, ps, { accounts: 5 });
      answer('collapsing');
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
      for (const account of [victim, child, grandchild, named, other]) expect(account.closed, `account ${account.id}`).to.equal(true);
      const reasons = events.flatMap((e) => (e.type === 'collapse' ? [e.reason] : []));
      expect(reasons).to.deep.equal(['reclaimed', 'reclaimed', 'reclaimed', 'reclaimed', 'reclaimed']);
      expect(told).to.deep.equal(['reclaimed']);
      expect(late.participation.closed).to.equal(true);
      expect(tracker.used).to.equal(0);
    });
  });

  describe('12. smaller', () => {
    it('a make() that closes the account gets AccountClosed, one that shuts the tracker down TrackerShutdown', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000 });
      const account = tracker.newAccount();
      expect(() =>
        account.registerParticipantWith(() => {
          account.close();
          return new TestParticipant();
        }),
      )
        .to.throw(MemquotaError, /^account \d+ was closed$/)
        .with.property('kind', 'AccountClosed');
      expectBooks(tracker, [], { accounts: 0, participants: 0 });
      const next = tracker.newAccount();
      expect(() =>
        next.registerParticipantWith(() => {
          tracker.shutdown();
          return new TestParticipant();
        }),
      )
        .to.throw(MemquotaError, /shut down/)
        .with.property('kind', 'TrackerShutdown');
    });

    it('data claimed inside registerParticipantWith becomes a candidate once make() returns (found by the property test)', async () => {
      // With a synchronous scheduler the claim in make() runs reclamation while a stand-in with
      // no data age answers for the participant: no candidate, the tracker stalls.
      const tracker = MemoryQuotaTracker.create({ max: 500, lowWater: 300 }, { scheduler: queueScheduler });
      const ps: TestParticipant[] = [];
      const made = tracker.newAccount().registerParticipantWith((participation) => {
        const p = new TestParticipant();
        p.participation = participation;
        p.claim(501, 0);
        return p;
      });
      ps.push(made);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
      expect(made.reclaimCalls).to.equal(1);
      expect(tracker.used).to.be.at.most(tracker.max);
    });

    it('the collapse event of a reclaimed operator stream reports the bytes its account held', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 600 });
      const events = recordEvents(tracker);
      const oldSource = new Subject<string>();
      const newSource = new Subject<string>();
      const errors: unknown[] = [];
      oldSource.pipe(memquota(() => tracker.newAccount(), { scheduler: stalled, cost: () => 600 })).subscribe({ error: (e) => errors.push(e) });
      newSource.pipe(memquota(() => tracker.newAccount(), { scheduler: stalled, cost: () => 600 })).subscribe({ error: (e) => errors.push(e) });
      oldSource.next('old');
      newSource.next('new');
      expectBooks(tracker);
      expect(tracker.used).to.equal(1200);
      await tracker.settled();
      expectBooks(tracker);
      const collapses = events.filter((e) => e.type === 'collapse');
      expect(collapses).to.have.length(1);
      expect(collapses[0]).to.deep.include({ reason: 'reclaimed', released: 600 });
      expect(tracker.used).to.equal(600);
      expect(errors).to.have.length(1);
    });

    it('a clock that returns NaN does not silently disable reclamation (fault invalid-age, reclaimed first)', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { now: () => NaN });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      for (let k = 0; k < 3; k++) join(tracker.newAccount(), ps, tracker.now()).claim(400);
      await tracker.settled();
      expectBooks(tracker, ps);
      expect(tracker.used).to.be.at.most(500);
      expect(faults(events)).to.include('invalid-age');
      const error = events.find((e) => e.type === 'participant-error' && e.fault === 'invalid-age') as { error?: unknown };
      expect(String(error.error)).to.match(/getOldest\(\) returned NaN/);
    });

    it('a reclaim() that awaits settled() does not deadlock: the reclaim deadline ends the wait', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { reclaimTimeout: 40 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const waiter = join(tracker.newAccount(), ps, 0);
      waiter.onReclaim = () => tracker.settled().then(() => 'collapsing' as const);
      waiter.claim(1200);
      expect(await within(tracker.settled(), 2000)).to.equal('settled');
      expectBooks(tracker, ps, { accounts: 0 });
      expect(faults(events)).to.deep.equal(['reclaim-timeout']);
    });
  });
});
