import { expect } from 'chai';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import type { Account, Participation } from '../lib/handles.js';
import { MemquotaError } from '../lib/errors.js';
import type { Participant } from '../lib/types.js';
import { TestParticipant, collectGarbageUntil, expectBooks, join, recordEvents, watchCollapse } from './helpers/books.js';
import { expectKind } from './helpers/errors.js';


const BAD_COUNTS: [string, number][] = [
  ['a negative count (-1)', -1],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['a fractional count (0.5)', 0.5],
  ['an unsafe integer (2 ** 53)', 2 ** 53],
  ["a string ('10')", '10' as unknown as number],
];

/**
 * A participant that does not hold its participation, so a spec can keep the participant and
 * lose the handle (or the other way round).
 */
function bareParticipant(): Participant {
  return { getOldest: () => 0, reclaim: () => 'collapsing' };
}

/** Registers a participant in `account` that nothing but the tracker's WeakRef points at. */
function registerForgottenParticipant(account: Account, bytes: number): Participation {
  const participation = account.registerParticipant(bareParticipant());
  participation.claim(bytes);
  return participation;
}

/** Registers a participant and drops its only participation handle. */
function forgetParticipation(account: Account, participant: Participant, bytes: number): void {
  account.registerParticipant(participant).claim(bytes);
}

describe('Participation', () => {
  describe('claim and release', () => {
    it('keeps tracker.used exactly the sum of every claim', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1_000_000 });
      const ps: TestParticipant[] = [];
      const a = tracker.newAccount();
      const b = a.newChild();
      const p1 = join(a, ps, 0);
      const p2 = join(a, ps, 0);
      const p3 = join(b, ps, 0);
      const steps: [TestParticipant, 'claim' | 'release', number][] = [
        [p1, 'claim', 100],
        [p2, 'claim', 250],
        [p3, 'claim', 1],
        [p1, 'release', 40],
        [p3, 'claim', 0],
        [p2, 'release', 250],
        [p1, 'release', 0],
        [p3, 'claim', 99_999],
      ];
      for (const [p, op, bytes] of steps) {
        p[op](bytes);
        expectBooks(tracker, ps, { participants: 3 });
        expect(p.participation.claimed).to.equal(p.held);
      }
      expect(tracker.used).to.equal(60 + 0 + 100_000);
    });

    for (const [name, bad] of BAD_COUNTS) {
      it(`throws RangeError for ${name} on claim and release alike, changing nothing`, () => {
        const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
        const events = recordEvents(tracker);
        const ps: TestParticipant[] = [];
        const p = join(tracker.newAccount(), ps, 0);
        p.claim(300);
        expect(() => p.participation.claim(bad)).to.throw(RangeError, /claim/);
        expect(() => p.participation.release(bad)).to.throw(RangeError, /release/);
        expectBooks(tracker, ps, { participants: 1 });
        expect(p.participation.claimed).to.equal(300);
        expect(tracker.used).to.equal(300);
        expect(events).to.deep.equal([]);
        expect(tracker.stats.participantErrors).to.equal(0);
      });
    }

    it('refuses a claim that would take the total past Number.MAX_SAFE_INTEGER', () => {
      const tracker = MemoryQuotaTracker.create({ max: Number.MAX_SAFE_INTEGER, lowWater: 1000 });
      const ps: TestParticipant[] = [];
      const p = join(tracker.newAccount(), ps, 0);
      p.claim(Number.MAX_SAFE_INTEGER - 10);
      expect(() => p.participation.claim(11)).to.throw(RangeError);
      expectBooks(tracker, ps);
      expect(tracker.used).to.equal(Number.MAX_SAFE_INTEGER - 10);
      p.claim(10);
      expectBooks(tracker, ps);
    });

    it('clamps a release of more than was claimed and reports it as a participant-error', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const p = join(account, ps, 0);
      const other = join(account, ps, 0);
      p.claim(300);
      other.claim(200);
      p.release(500);
      expectBooks(tracker, ps, { participants: 2 });
      expect(p.participation.claimed).to.equal(0);
      expect(tracker.used).to.equal(200);
      expect(events).to.have.length(1);
      expect(events[0]).to.deep.include({ type: 'participant-error', account: account.id, fault: 'over-release' });
      expect((events[0] as { error: unknown }).error).to.be.instanceOf(RangeError);
      expect(tracker.stats.participantErrors).to.equal(1);
      // Still alive and usable.
      p.claim(50);
      expectBooks(tracker, ps);
    });
  });

  describe('handles', () => {
    it('keeps the participant alive until its last clone closes', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      const p = join(tracker.newAccount(), ps, 0);
      p.claim(400);
      const clone = p.participation.clone();
      p.participation.close();
      expect(p.participation.closed).to.equal(true);
      expect(clone.closed).to.equal(false);
      expectKind(() => p.participation.claim(1), 'ParticipantShutdown', 'claim on the closed handle');
      expectKind(() => p.participation.clone(), 'ParticipantShutdown', 'clone of the closed handle');
      expectKind(() => p.participation.account(), 'ParticipantShutdown', 'account() of the closed handle');
      expect(() => p.participation.release(10)).not.to.throw();
      expect(tracker.used, 'a release on a closed handle changes nothing').to.equal(400);
      expectBooks(tracker, undefined, { participants: 1 });
      // The participant goes on through the clone.
      p.participation = clone;
      p.claim(100);
      expectBooks(tracker, ps, { participants: 1 });
      clone.close();
      clone.close();
      expectBooks(tracker, ps, { participants: 0 });
      expect(tracker.used).to.equal(0);
    });

    it('closes with using, through Symbol.dispose', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const account = tracker.newAccount();
      const participant = bareParticipant();
      {
        using participation = account.registerParticipant(participant);
        participation.claim(77);
        expect(tracker.used).to.equal(77);
      }
      expectBooks(tracker, [], { accounts: 1, participants: 0 });
      expect(tracker.used).to.equal(0);
    });

    it('destroy() tears the participant down whatever handles exist, and leaves the account open', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const watch = watchCollapse(account);
      const p = join(account, ps, 0);
      const neighbour = join(account, ps, 0);
      p.claim(500);
      neighbour.claim(5);
      const clone = p.participation.clone();
      clone.destroy();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(tracker.used).to.equal(5);
      expect([p.participation.closed, clone.closed]).to.deep.equal([true, true]);
      expectKind(() => p.participation.claim(1), 'ParticipantShutdown');
      expectKind(() => clone.claim(1), 'ParticipantShutdown');
      expect(() => clone.destroy()).not.to.throw();
      expect(() => clone.close()).not.to.throw();
      p.participation.close();
      expect(watch.reasons).to.deep.equal([]);
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
    });

    it('account() gives a weak handle onto its account that does not keep it open', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const id = account.id;
      const p = join(account, ps, 0);
      const weak = p.participation.account();
      expect(weak.id).to.equal(id);
      const extra = weak.upgrade();
      extra.close();
      account.close();
      expect(weak.closed).to.equal(true);
      expect(p.participation.closed).to.equal(true);
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
    });
  });

  describe('after the participant is gone', () => {
    it('says AccountClosed on every clone once its account was reclaimed (the account is looked up first); release stays silent', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const p = join(account, ps, 0);
      const clone = p.participation.clone();
      p.claim(2000);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
      for (const handle of [p.participation, clone]) {
        expect(() => handle.claim(1)).to.throw(MemquotaError, /reclaimed/).with.property('kind', 'AccountClosed');
        expectKind(() => handle.clone(), 'AccountClosed');
        expect(() => handle.release(1)).not.to.throw();
        expect(() => handle.release(10 ** 9)).not.to.throw();
        expect(handle.claimed).to.equal(0);
      }
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
      expect(tracker.stats.participantErrors, 'a release after the end is not an over-release').to.equal(0);
    });

    it('says AccountClosed once its account was closed, ParticipantShutdown when only the participant went', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000 });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const p = join(account, ps, 0);
      p.claim(10);
      account.close();
      expect(() => p.participation.claim(1)).to.throw(MemquotaError, /closed/).with.property('kind', 'AccountClosed');
      expectKind(() => p.participation.clone(), 'AccountClosed');
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
      const open = tracker.newAccount();
      const q = join(open, ps, 0);
      const qClone = q.participation.clone();
      q.participation.destroy();
      for (const handle of [q.participation, qClone]) {
        expect(() => handle.claim(1)).to.throw(MemquotaError, /torn down/).with.property('kind', 'ParticipantShutdown');
        expectKind(() => handle.clone(), 'ParticipantShutdown');
      }
      expectBooks(tracker, ps, { accounts: 1, participants: 0 });
    });

    it('says TrackerShutdown once the tracker was shut down; release never throws', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000 });
      const ps: TestParticipant[] = [];
      const p = join(tracker.newAccount(), ps, 0);
      p.claim(10);
      const clone = p.participation.clone();
      tracker.shutdown();
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
      expectKind(() => p.participation.claim(1), 'TrackerShutdown');
      expectKind(() => clone.clone(), 'TrackerShutdown');
      expect(() => p.participation.release(5)).not.to.throw();
      expect(() => p.participation.release(-1), 'a bad count is still a RangeError').to.throw(RangeError);
      expect(() => clone.destroy()).not.to.throw();
      expect(() => clone.close()).not.to.throw();
      expect(tracker.used).to.equal(0);
    });

    it('releases the memory of a garbage-collected participant and reports it', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const events = recordEvents(tracker);
      const account = tracker.newAccount();
      const keptParticipant = new TestParticipant(0);
      keptParticipant.participation = account.registerParticipant(keptParticipant);
      keptParticipant.claim(1);
      // The spec keeps the handle, not the participant.
      const forgotten = registerForgottenParticipant(account, 4321);
      expect(tracker.used).to.equal(4322);
      expectBooks(tracker, undefined, { participants: 2 });

      await collectGarbageUntil(() => forgotten.closed);
      expectBooks(tracker, undefined, { accounts: 1, participants: 1 });
      expect(tracker.used).to.equal(1);
      expect(events.filter((e) => e.type === 'participant-error')).to.deep.equal([
        { type: 'participant-error', account: account.id, fault: 'garbage-collected' },
      ]);
      expectKind(() => forgotten.claim(1), 'ParticipantShutdown');
      expect(() => forgotten.release(1)).not.to.throw();
      expect(account.closed).to.equal(false);
      expect(keptParticipant.live).to.equal(true);
    });

    it('counts a participation handle garbage-collected without close() as closed', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const account = tracker.newAccount();
      const participant = bareParticipant();
      forgetParticipation(account, participant, 999);
      expectBooks(tracker, undefined, { participants: 1 });
      expect(tracker.used).to.equal(999);

      await collectGarbageUntil(() => tracker.used === 0);
      expectBooks(tracker, undefined, { accounts: 1, participants: 0 });
      // The participant itself is still here: it was its handle that went.
      expect(participant.getOldest()).to.equal(0);
    });
  });
});
