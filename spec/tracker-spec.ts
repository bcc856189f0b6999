import { expect } from 'chai';
import { queueScheduler } from 'rxjs';
import { MemoryQuotaTracker, NO_DATA_SLOP } from '../lib/tracker.js';
import type { Account } from '../lib/handles.js';
import { ConfigError, MemquotaError } from '../lib/errors.js';
import type { MemquotaEvent, Reclaimed, Usage } from '../lib/types.js';
import {
  FakeClock,
  TestParticipant,
  expectBooks,
  join,
  recordEvents,
  turns,
  victimIds,
  watchCollapse,
} from './helpers/books.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The events of one type, narrowed. */
/**
 * An event without its `durationMs`, after checking that one is there and sane: durations
 * depend on the clock, the rest of a `reclaim-end` does not.
 */
function timeless(event: MemquotaEvent | undefined): unknown {
  if (event?.type !== 'reclaim-end') return event;
  const { durationMs, ...rest } = event;
  expect(durationMs).to.be.a('number').and.to.be.at.least(0);
  return rest;
}

function only<T extends MemquotaEvent['type']>(events: readonly MemquotaEvent[], type: T): Extract<MemquotaEvent, { type: T }>[] {
  return events.filter((e): e is Extract<MemquotaEvent, { type: T }> => e.type === type);
}

/** A promise the spec settles by hand, for reclaim answers that arrive later. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('MemoryQuotaTracker', () => {
  describe('reclamation by data age', () => {
    it('lets 19 × 1 MiB fit, then reclaims the oldest accounts first and stops at lowWater', async () => {
      const clock = new FakeClock();
      const tracker = MemoryQuotaTracker.create({ max: 20 * MiB, lowWater: 15 * MiB }, { now: clock.now });
      const events = recordEvents(tracker);
      const participants: TestParticipant[] = [];
      const accounts: Account[] = [];
      const watches: ReturnType<typeof watchCollapse>[] = [];
      for (let k = 0; k < 21; k++) {
        const account = tracker.newAccount();
        accounts.push(account);
        watches.push(watchCollapse(account));
        join(account, participants);
      }
      expectBooks(tracker, participants, { accounts: 21, participants: 21 });

      // Account k gets its 1 MiB at t = k s: at t = 20 s, its data is 20 - k seconds old.
      for (let k = 0; k < 19; k++) {
        clock.time = k * 1000;
        participants[k]!.claim(MiB, tracker.now());
        expectBooks(tracker, participants);
      }
      await tracker.settled();
      expectBooks(tracker, participants, { accounts: 21 });
      expect(tracker.used).to.equal(19 * MiB);
      expect(events, 'no reclamation while 19 MiB fit in 20 MiB').to.deep.equal([]);

      // The 20th brings use to exactly max: reclamation starts only when use passes max.
      clock.time = 19_000;
      participants[19]!.claim(MiB, tracker.now());
      expectBooks(tracker, participants);
      await tracker.settled();
      expect(events).to.deep.equal([]);

      // The 21st passes max. Reclamation is scheduled, never run inside claim.
      clock.time = 20_000;
      participants[20]!.claim(MiB, tracker.now());
      expectBooks(tracker, participants);
      expect(tracker.used).to.equal(21 * MiB);
      expect(participants.map((p) => p.reclaimCalls).reduce((a, b) => a + b)).to.equal(0);

      await tracker.settled();
      expectBooks(tracker, participants, { accounts: 15, participants: 15 });
      // 6 victims take use from 21 MiB down to 15 MiB = lowWater; 5 would have left 16 MiB.
      expect(tracker.used).to.equal(15 * MiB);
      const oldestSix = accounts.slice(0, 6).map((a) => a.id);
      expect(victimIds(events), 'victims, oldest first').to.deep.equal(oldestSix);
      watches.forEach((watch, k) => {
        expect(watch.reasons, `account ${k} collapsed$`).to.deep.equal(k < 6 ? ['reclaimed'] : []);
        expect(watch.completed).to.equal(k < 6);
        expect(accounts[k]!.closed).to.equal(k < 6);
        expect(participants[k]!.reclaimCalls, `participant ${k} asked to reclaim`).to.equal(k < 6 ? 1 : 0);
      });
      expect(events[0]).to.deep.equal({ type: 'reclaim-start', cause: 'quota', used: 21 * MiB, max: 20 * MiB, lowWater: 15 * MiB });
      expect(events.slice(1, -1)).to.deep.equal(
        oldestSix.flatMap((id, k) => [
          { type: 'victim', account: id, oldest: k * 1000, bytes: MiB, accounts: 1 },
          { type: 'collapse', account: id, reason: 'reclaimed', released: MiB },
        ]),
      );
      expect(timeless(events.at(-1))).to.deep.equal({ type: 'reclaim-end', used: 15 * MiB, victims: 6, outcome: 'low-water' });
      expect(tracker.stats).to.deep.include({ reclaimRuns: 1, victims: 6, bytesReclaimed: 6 * MiB, accountsCollapsed: 6, accounts: 15, participants: 15 });

      // The survivors go on claiming; under max nothing happens.
      participants[20]!.claim(MiB, tracker.now());
      expectBooks(tracker, participants);
      await tracker.settled();
      expect(tracker.stats.reclaimRuns).to.equal(1);
      expectBooks(tracker, participants, { accounts: 15 });
    });

    it('chooses the parent when its data is older, and reclaiming it takes the child', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 4000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const parent = tracker.newAccount();
      const child = parent.newChild();
      const other = tracker.newAccount();
      const [parentWatch, childWatch, otherWatch] = [parent, child, other].map(watchCollapse);
      join(parent, ps, 1000).claim(3000);
      join(child, ps, 3000).claim(3000);
      join(other, ps, 2000).claim(3000);
      expectBooks(tracker, ps, { accounts: 3 });

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(tracker.used).to.equal(3000);
      expect(only(events, 'victim')).to.deep.equal([{ type: 'victim', account: parent.id, oldest: 1000, bytes: 3000, accounts: 2 }]);
      expect(only(events, 'collapse').map((e) => [e.account, e.reason, e.released])).to.deep.equal([
        [parent.id, 'reclaimed', 3000],
        [child.id, 'reclaimed', 3000],
      ]);
      expect(parentWatch!.reasons).to.deep.equal(['reclaimed']);
      expect(childWatch!.reasons).to.deep.equal(['reclaimed']);
      expect(otherWatch!.reasons).to.deep.equal([]);
    });

    it('chooses the child when its data is older, and reclaiming it leaves the parent', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 3000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const parent = tracker.newAccount();
      const child = parent.newChild();
      const other = tracker.newAccount();
      const [parentWatch, childWatch, otherWatch] = [parent, child, other].map(watchCollapse);
      const inParent = join(parent, ps, 3000);
      inParent.claim(3000);
      join(child, ps, 1000).claim(3000);
      join(other, ps, 2000).claim(3000);
      expectBooks(tracker, ps, { accounts: 3 });

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      // The child goes first; the parent is not made older by its child's data, so the other
      // account (2 s) goes before the parent (3 s).
      expect(victimIds(events)).to.deep.equal([child.id, other.id]);
      expect(only(events, 'victim')[0]!.accounts).to.equal(1);
      expect(childWatch!.reasons).to.deep.equal(['reclaimed']);
      expect(otherWatch!.reasons).to.deep.equal(['reclaimed']);
      expect(parentWatch!.reasons).to.deep.equal([]);
      expect(inParent.reclaimCalls).to.equal(0);
      expect(tracker.used).to.equal(3000);
      // The parent is still fully usable.
      inParent.claim(100);
      parent.newChild().close();
      expectBooks(tracker, ps, { accounts: 1 });
    });

    it('reclaims a child of several parents with whichever parent is chosen, and each descendant once', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000, lowWater: 5000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      // A diamond: root -> left, root -> right, left -> bottom, right -> bottom; plus another parent.
      const root = tracker.newAccount();
      const left = root.newChild();
      const right = root.newChild();
      const bottom = left.newChild();
      bottom.addParent(right);
      const stepParent = tracker.newAccount();
      bottom.addParent(stepParent);
      const watches = [root, left, right, bottom, stepParent].map(watchCollapse);
      join(root, ps, 1000).claim(2000);
      join(left, ps, 5000).claim(2000);
      join(right, ps, 5000).claim(2000);
      join(bottom, ps, 5000).claim(2000);
      const survivor = join(stepParent, ps, 4000);
      survivor.claim(3000);
      expectBooks(tracker, ps, { accounts: 5 });

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(only(events, 'victim')).to.deep.equal([{ type: 'victim', account: root.id, oldest: 1000, bytes: 2000, accounts: 4 }]);
      expect(only(events, 'collapse').map((e) => e.account).sort((a, b) => a - b)).to.deep.equal(
        [root.id, left.id, right.id, bottom.id].sort((a, b) => a - b),
      );
      expect(watches.map((w) => w.reasons)).to.deep.equal([['reclaimed'], ['reclaimed'], ['reclaimed'], ['reclaimed'], []]);
      expect(ps.slice(0, 4).map((p) => p.reclaimCalls)).to.deep.equal([1, 1, 1, 1]);
      expect(tracker.used).to.equal(3000);
      // The step-parent lost its child but is otherwise untouched.
      stepParent.newChild().close();
      expectBooks(tracker, ps, { accounts: 1 });
    });

    it('collapses an account with two participants as a whole; a younger account survives', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 5000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const twoParticipants = tracker.newAccount();
      const younger = tracker.newAccount();
      const [twoWatch, youngerWatch] = [twoParticipants, younger].map(watchCollapse);
      const old = join(twoParticipants, ps, 1000);
      const fresh = join(twoParticipants, ps, 5000);
      const bystander = join(younger, ps, 3000);
      old.claim(1000);
      fresh.claim(4000);
      bystander.claim(4000);
      expectBooks(tracker, ps, { accounts: 2, participants: 3 });

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(victimIds(events)).to.deep.equal([twoParticipants.id]);
      expect(only(events, 'collapse')).to.deep.equal([{ type: 'collapse', account: twoParticipants.id, reason: 'reclaimed', released: 5000 }]);
      expect([old.reclaimCalls, fresh.reclaimCalls, bystander.reclaimCalls]).to.deep.equal([1, 1, 0]);
      expect(old.live || fresh.live).to.equal(false);
      expect(twoWatch!.reasons).to.deep.equal(['reclaimed']);
      expect(youngerWatch!.reasons).to.deep.equal([]);
      expect(tracker.used).to.equal(4000);
    });

    it('re-reads data ages when it pops a victim, so data freed meanwhile counts', async () => {
      const clock = new FakeClock(10_000);
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 3000 }, { now: clock.now });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const a = tracker.newAccount();
      const b = tracker.newAccount();
      const c = tracker.newAccount();
      const pa = join(a, ps, 1000);
      pa.claim(3000);
      const pb = join(b, ps, 2000);
      pb.claim(3000);
      join(c, ps, 3000).claim(3000);
      // When a is asked, b's queue drains (releases) its old data: only fresh data is left.
      pa.onReclaim = (self) => {
        pb.release(1000);
        pb.oldest = 9000;
        self.collapse();
        return 'collapsing';
      };
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1 });
      expect(victimIds(events)).to.deep.equal([a.id, c.id]);
      expect(b.closed).to.equal(false);
    });
  });

  describe('victim policy', () => {
    it("'largest' reclaims the accounts holding the most bytes first, whatever their age", async () => {
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 1500 }, { victimPolicy: 'largest' });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const oldestSmall = tracker.newAccount();
      const big = tracker.newAccount();
      const medium = tracker.newAccount();
      join(oldestSmall, ps, 0).claim(1000);
      join(big, ps, 2000).claim(2500);
      join(big, ps, 2000).claim(2500);
      join(medium, ps, 1000).claim(3000);
      expectBooks(tracker, ps, { accounts: 3 });

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1 });
      expect(only(events, 'victim')).to.deep.equal([
        { type: 'victim', account: big.id, oldest: undefined, bytes: 5000, accounts: 1 },
        { type: 'victim', account: medium.id, oldest: undefined, bytes: 3000, accounts: 1 },
      ]);
      expect(oldestSmall.closed).to.equal(false);
      expect(tracker.used).to.equal(1000);
    });

    it("'oldest' is the default", async () => {
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 5000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const oldestSmall = tracker.newAccount();
      join(oldestSmall, ps, 0).claim(1000);
      join(tracker.newAccount(), ps, 2000).claim(8000);
      await tracker.settled();
      expectBooks(tracker, ps);
      expect(victimIds(events)[0]).to.equal(oldestSmall.id);
    });
  });

  describe('faulty participants', () => {
    it('tears down a participant whose getOldest throws, releases its memory and reports it', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 5000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const faultyAccount = tracker.newAccount();
      const faulty = join(faultyAccount, ps, 0);
      faulty.claim(3000);
      const boom = new Error('getOldest is broken');
      faulty.onGetOldest = () => {
        throw boom;
      };
      const b = tracker.newAccount();
      join(b, ps, 1000).claim(3000);
      join(tracker.newAccount(), ps, 2000).claim(3000);
      expectBooks(tracker, ps);

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 2, participants: 1 });
      expect(only(events, 'participant-error')).to.deep.equal([
        { type: 'participant-error', account: faultyAccount.id, fault: 'getOldest-threw', error: boom },
      ]);
      expect(faulty.live).to.equal(false);
      expect(faulty.reclaimCalls).to.equal(0);
      expect(() => faulty.participation.claim(1)).to.throw(MemquotaError).with.property('kind', 'ParticipantShutdown');
      // Its account stays open (only the participant was faulty); 9000 - 3000 > 5000, so b went too.
      expect(faultyAccount.closed).to.equal(false);
      expect(victimIds(events)).to.deep.equal([b.id]);
      expect(tracker.used).to.equal(3000);
      expect(tracker.stats.participantErrors).to.equal(1);
      join(faultyAccount, ps, 3000).claim(10);
      expectBooks(tracker, ps, { accounts: 2, participants: 2 });
    });

    for (const [how, reclaim, fault] of [
      ['throws', () => { throw new Error('reclaim is broken'); }, 'reclaim-threw'],
      ['rejects', () => Promise.reject(new Error('reclaim is broken')), 'reclaim-threw'],
      ['answers nonsense', () => 'done' as unknown as Reclaimed, 'reclaim-invalid-answer'],
    ] as const) {
      it(`counts a participant whose reclaim ${how} as collapsed`, async () => {
        const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 6000 });
        const events = recordEvents(tracker);
        const ps: TestParticipant[] = [];
        const faultyAccount = tracker.newAccount();
        const watch = watchCollapse(faultyAccount);
        const faulty = join(faultyAccount, ps, 1000);
        faulty.claim(3000);
        faulty.onReclaim = reclaim;
        const survivor = tracker.newAccount();
        join(survivor, ps, 2000).claim(3000);
        join(survivor, ps, 2000).claim(3000);
        expectBooks(tracker, ps);

        await tracker.settled();
        expectBooks(tracker, ps, { accounts: 1, participants: 2 });
        expect(faulty.live).to.equal(false);
        expect(watch.reasons).to.deep.equal(['reclaimed']);
        const errors = only(events, 'participant-error');
        expect(errors.map((e) => [e.account, e.fault])).to.deep.equal([[faultyAccount.id, fault]]);
        expect(errors[0]!.error).to.be.an('error');
        expect(only(events, 'reclaim-end').map(timeless)).to.deep.equal([{ type: 'reclaim-end', used: 6000, victims: 1, outcome: 'low-water' }]);
        expect(tracker.stats).to.deep.include({ participantErrors: 1, accountsCollapsed: 1, bytesReclaimed: 3000 });
      });
    }

    it("keeps a participant that answers 'partial' and goes on with the next victim", async () => {
      const clock = new FakeClock(5000);
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 4000 }, { now: clock.now });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const shedder = tracker.newAccount();
      const watch = watchCollapse(shedder);
      const partial = join(shedder, ps, 1000);
      partial.claim(4000);
      // It drops its older half and keeps the newest data.
      partial.onReclaim = (self) => {
        self.release(self.held / 2);
        self.oldest = clock.now();
        return 'partial';
      };
      const b = tracker.newAccount();
      join(b, ps, 2000).claim(3000);
      const c = tracker.newAccount();
      join(c, ps, 3000).claim(2000);
      expectBooks(tracker, ps);

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 2, participants: 2 });
      expect(victimIds(events)).to.deep.equal([shedder.id, b.id]);
      expect(partial.live).to.equal(true);
      expect(partial.participation.claimed).to.equal(2000);
      expect(watch.reasons).to.deep.equal([]);
      expect(only(events, 'collapse').map((e) => e.account)).to.deep.equal([b.id]);
      expect(tracker.used).to.equal(4000);
      expect(tracker.stats).to.deep.include({ victims: 2, accountsCollapsed: 1, bytesReclaimed: 5000 });
    });

    it("asks a 'partial' participant again while it keeps freeing, and stops when nothing is left to ask", async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 100 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const stubborn = tracker.newAccount();
      const p = join(stubborn, ps, 0);
      p.claim(1600);
      // Frees 400 bytes per request while it has more than 400, then nothing at all.
      p.onReclaim = (self) => {
        if (self.held > 400) self.release(400);
        return 'partial';
      };
      expectBooks(tracker, ps);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(p.reclaimCalls).to.equal(4);
      expect(tracker.used).to.equal(400);
      expect(only(events, 'reclaim-end').map(timeless)).to.deep.equal([{ type: 'reclaim-end', used: 400, victims: 4, outcome: 'no-candidate' }]);
    });

    it('treats a participant with "no data" but more than NO_DATA_SLOP claimed as a very old candidate', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 7000, lowWater: 3500 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const liar = tracker.newAccount();
      const p = join(liar, ps, 500);
      p.claim(NO_DATA_SLOP + 1);
      p.onGetOldest = () => undefined;
      const honest = tracker.newAccount();
      join(honest, ps, 0).claim(3000);
      expectBooks(tracker, ps);

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(only(events, 'victim')).to.deep.equal([{ type: 'victim', account: liar.id, oldest: -Infinity, bytes: NO_DATA_SLOP + 1, accounts: 1 }]);
      expect(only(events, 'participant-error').map((e) => [e.account, e.fault])).to.deep.include([liar.id, 'no-data-but-claimed']);
      expect(honest.closed).to.equal(false);
    });

    it('does not pick a participant with "no data" and at most NO_DATA_SLOP claimed', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 8000, lowWater: 5000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const small = tracker.newAccount();
      const p = join(small, ps, 0);
      p.claim(NO_DATA_SLOP);
      p.onGetOldest = () => undefined;
      const old = tracker.newAccount();
      join(old, ps, 1000).claim(4000);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(victimIds(events)).to.deep.equal([old.id]);
      expect(only(events, 'participant-error')).to.deep.equal([]);
      expect(tracker.used).to.equal(NO_DATA_SLOP);
    });

    it('stops cleanly when no candidate is left, and starts again when a candidate appears', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const a = tracker.newAccount();
      const quiet = join(a, ps, 0);
      quiet.onGetOldest = () => undefined;
      const b = tracker.newAccount();
      const idle = join(b, ps, 5);
      quiet.claim(2000);
      expectBooks(tracker, ps);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 2 });
      expect(only(events, 'reclaim-end').map(timeless)).to.deep.equal([{ type: 'reclaim-end', used: 2000, victims: 0, outcome: 'no-candidate' }]);
      expect(idle.reclaimCalls).to.equal(0);

      // A participant that held nothing starts holding data: it is a candidate now.
      idle.claim(100);
      expectBooks(tracker, ps);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1 });
      expect(victimIds(events)).to.deep.equal([b.id]);
      expect(tracker.used).to.equal(2000);

      // So is a new participant with data.
      const c = tracker.newAccount();
      join(c, ps, 10).claim(100);
      expectBooks(tracker, ps);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 1 });
      expect(victimIds(events)).to.deep.equal([b.id, c.id]);
      expect(only(events, 'reclaim-start')).to.have.length(3);
      expect(tracker.used).to.equal(2000);
    });

    it("re-arms after a stall once use grows by a hysteresis band, even from a 'partial' participant that freed nothing", async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const stubborn = join(tracker.newAccount(), ps, 0);
      stubborn.onReclaim = () => 'partial'; // frees nothing
      stubborn.claim(1200);
      await tracker.settled();
      expect(only(events, 'reclaim-end').map((e) => e.outcome)).to.deep.equal(['no-candidate']);
      expectBooks(tracker, ps, { accounts: 1 });

      stubborn.claim(400); // 1600: less than a band (500) past the stall at 1200
      await tracker.settled();
      expect(only(events, 'reclaim-start')).to.have.length(1);

      stubborn.onReclaim = (self) => {
        self.collapse();
        return 'collapsing';
      };
      stubborn.claim(200); // 1800: more than a band past the stall
      await tracker.settled();
      expect(only(events, 'reclaim-start')).to.have.length(2);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, ps, { accounts: 0 });
    });
  });

  describe('reconfigure', () => {
    it('starts reclamation at once when max drops below use', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 100 * KiB });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const accounts = [0, 1, 2, 3, 4].map((k) => {
        const account = tracker.newAccount();
        join(account, ps, k * 1000).claim(2 * KiB);
        return account;
      });
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 5 });
      expect(events).to.deep.equal([]);

      tracker.reconfigure({ max: 8 * KiB, lowWater: 6 * KiB });
      expectBooks(tracker, ps);
      expect([tracker.max, tracker.lowWater]).to.deep.equal([8 * KiB, 6 * KiB]);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 3 });
      expect(victimIds(events)).to.deep.equal([accounts[0]!.id, accounts[1]!.id]);
      expect(tracker.used).to.equal(6 * KiB);
    });

    it('stops a running reclamation early when lowWater rises', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 9500, lowWater: 5000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const answers: ReturnType<typeof deferred<Reclaimed>>[] = [];
      const accounts: Account[] = [];
      for (let k = 0; k < 10; k++) {
        const account = tracker.newAccount();
        accounts.push(account);
        const p = join(account, ps, k * 1000);
        p.claim(1000);
        // Each answer arrives only when the spec says so: the run spans several turns.
        p.onReclaim = (self) => {
          const answer = deferred<Reclaimed>();
          answers.push(answer);
          return answer.promise.then((reclaimed) => {
            self.release(self.held);
            self.collapse();
            return reclaimed;
          });
        };
      }
      expectBooks(tracker, ps);
      await turns(2);
      expect(answers.length, 'the first victim was asked').to.equal(1);
      expect(tracker.used).to.equal(10_000);

      tracker.reconfigure({ max: 9500, lowWater: 9000 });
      expectBooks(tracker, ps);
      answers[0]!.resolve('collapsing');
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 9 });
      expect(victimIds(events)).to.deep.equal([accounts[0]!.id]);
      expect(only(events, 'reclaim-end').map(timeless)).to.deep.equal([{ type: 'reclaim-end', used: 9000, victims: 1, outcome: 'low-water' }]);
    });

    it('rejects an invalid config with ConfigError and changes nothing', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000, lowWater: 6000, softMax: 8000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      join(tracker.newAccount(), ps, 0).claim(7000);
      for (const bad of [{ max: 5000, lowWater: 4950 }, { max: 0 }, { max: 5000, softMax: 6000 }, { lowWater: 1000 }, { max: 5000, lowWater: -1 }]) {
        expect(() => tracker.reconfigure(bad), JSON.stringify(bad)).to.throw(ConfigError);
        expect([tracker.max, tracker.lowWater, tracker.softMax]).to.deep.equal([10_000, 6000, 8000]);
        expectBooks(tracker, ps);
      }
      await tracker.settled();
      expect(events).to.deep.equal([]);
      expect(tracker.used).to.equal(7000);
    });
  });

  describe('observing the tracker', () => {
    it('usage$ emits the current use on subscription and after every change', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const ps: TestParticipant[] = [];
      const p = join(tracker.newAccount(), ps, 0);
      p.claim(100);
      const seen: Usage[] = [];
      const sub = tracker.usage$.subscribe((u) => seen.push(u));
      expect(seen).to.deep.equal([{ used: 100, max: 1000, lowWater: 500, pressure: 0.1, reclaiming: false }]);
      p.claim(300);
      p.release(200);
      expectBooks(tracker, ps);
      expect(seen.map((u) => u.used)).to.deep.equal([100, 400, 200]);
      expect(seen[1]!.pressure).to.equal(0.4);
      tracker.reconfigure({ max: 2000, lowWater: 1000 });
      expect(seen.at(-1)).to.deep.equal({ used: 200, max: 2000, lowWater: 1000, pressure: 0.1, reclaiming: false });

      // Past max: snapshots while reclaiming say so, the last one says it is over.
      p.claim(2000);
      await tracker.settled();
      expectBooks(tracker, ps);
      expect(seen.some((u) => u.reclaiming)).to.equal(true);
      expect(seen.at(-1)).to.deep.equal({ used: 0, max: 2000, lowWater: 1000, pressure: 0, reclaiming: false });
      const count = seen.length;
      sub.unsubscribe();
      join(tracker.newAccount(), ps).claim(5);
      expect(seen.length).to.equal(count);
    });

    it('pressure$ turns high above softMax and normal only at or below lowWater', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 600, softMax: 800 });
      const ps: TestParticipant[] = [];
      const p = join(tracker.newAccount(), ps, 0);
      const seen: string[] = [];
      tracker.pressure$.subscribe((level) => seen.push(level));
      expect(seen).to.deep.equal(['normal']);
      const steps: [number, string[]][] = [
        [700, ['normal']],
        [800, ['normal']], // at softMax: not above it
        [801, ['normal', 'high']],
        [950, ['normal', 'high']],
        [700, ['normal', 'high']], // below softMax but above lowWater: still high
        [601, ['normal', 'high']],
        [600, ['normal', 'high', 'normal']], // at lowWater
        [750, ['normal', 'high', 'normal']],
        [900, ['normal', 'high', 'normal', 'high']],
      ];
      for (const [level, expected] of steps) {
        if (level > p.held) p.claim(level - p.held);
        else p.release(p.held - level);
        expectBooks(tracker, ps);
        expect(seen, `at ${level}`).to.deep.equal(expected);
      }
      const late: string[] = [];
      tracker.pressure$.subscribe((level) => late.push(level));
      expect(late).to.deep.equal(['high']);
      await tracker.settled();
      expect(tracker.stats.reclaimRuns).to.equal(0);
    });

    it('stats count runs, victims, bytes, collapses and participant errors', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000, lowWater: 2000 });
      const ps: TestParticipant[] = [];
      expect(tracker.stats).to.deep.equal({
        reclaimRuns: 0,
        victims: 0,
        bytesReclaimed: 0,
        accountsCollapsed: 0,
        participantErrors: 0,
        heapGuardRuns: 0,
        staleRuns: 0,
        accounts: 0,
        participants: 0,
      });
      const a = tracker.newAccount();
      const b = a.newChild();
      const c = tracker.newAccount();
      join(a, ps, 0).claim(2000);
      join(b, ps, 5000).claim(2000);
      const pc = join(c, ps, 3000);
      pc.claim(1500);
      pc.release(1600); // over-release: a participant error
      pc.claim(1500);
      expect(tracker.stats).to.deep.include({ participantErrors: 1, accounts: 3, participants: 3 });
      await tracker.settled();
      expectBooks(tracker, ps);
      expect(tracker.stats).to.deep.equal({
        reclaimRuns: 1,
        victims: 1,
        bytesReclaimed: 4000,
        accountsCollapsed: 2,
        participantErrors: 1,
        heapGuardRuns: 0,
        staleRuns: 0,
        accounts: 1,
        participants: 1,
      });
      // A snapshot: it does not change under the reader's feet.
      const before = tracker.stats;
      c.close();
      expect(before.accounts).to.equal(1);
      expect(tracker.stats).to.deep.include({ accounts: 0, participants: 0, accountsCollapsed: 2 });
    });

    it('settled() resolves at once when idle, and only after the answers when reclaiming', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 800 });
      const ps: TestParticipant[] = [];
      await tracker.settled();
      const p = join(tracker.newAccount(), ps, 0);
      p.claim(800);
      const answer = deferred<Reclaimed>();
      p.onReclaim = (self) =>
        answer.promise.then((a) => {
          self.release(self.held);
          return a;
        });
      join(tracker.newAccount(), ps, 1).claim(800);
      let settled = false;
      void tracker.settled().then(() => (settled = true));
      await turns(3);
      expect(p.reclaimCalls).to.equal(1);
      expect(settled).to.equal(false);
      expectBooks(tracker, ps);
      answer.resolve('collapsing');
      await turns(1);
      expect(settled).to.equal(true);
      expectBooks(tracker, ps);
      expect(tracker.used).to.equal(800);
    });
  });

  describe('shutdown', () => {
    it('tears every account down, completes the observables and refuses later work', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      const a = tracker.newAccount();
      const child = a.newChild();
      const weak = a.downgrade();
      const p = join(a, ps, 0);
      p.claim(1000);
      join(child, ps, 0).claim(2000);
      const watches = [a, child].map(watchCollapse);
      const done = { events: false, usage: false, pressure: false };
      const events: MemquotaEvent[] = [];
      tracker.events$.subscribe({ next: (e) => events.push(e), complete: () => (done.events = true) });
      tracker.usage$.subscribe({ complete: () => (done.usage = true) });
      tracker.pressure$.subscribe({ complete: () => (done.pressure = true) });
      expectBooks(tracker, ps, { accounts: 2 });

      tracker.shutdown();
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
      expect(tracker.used).to.equal(0);
      expect(watches.map((w) => [w.reasons, w.completed])).to.deep.equal([
        [['tracker-shutdown'], true],
        [['tracker-shutdown'], true],
      ]);
      expect(only(events, 'collapse').map((e) => [e.reason, e.released])).to.have.deep.members([
        ['tracker-shutdown', 1000],
        ['tracker-shutdown', 2000],
      ]);
      expect(done).to.deep.equal({ events: true, usage: true, pressure: true });

      const shutdownError = { name: 'MemquotaError', kind: 'TrackerShutdown' };
      for (const [what, call] of [
        ['newAccount', () => tracker.newAccount()],
        ['newChild', () => a.newChild()],
        ['clone', () => a.clone()],
        ['registerParticipant', () => a.registerParticipant(new TestParticipant())],
        ['upgrade', () => weak.upgrade()],
        ['claim', () => p.participation.claim(1)],
        ['participation clone', () => p.participation.clone()],
      ] as const) {
        expect(call, what).to.throw(MemquotaError).that.deep.includes(shutdownError);
      }
      expect(() => p.participation.release(1)).not.to.throw();
      expect(() => a.close()).not.to.throw();
      expect(() => tracker.shutdown()).not.to.throw();
      expect(() => tracker.reconfigure({ max: 5000 })).not.to.throw();
      await tracker.settled();
      expectBooks(tracker, [], { accounts: 0, participants: 0 });
    });

    it('lets a reclamation waiting for answers end quietly', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const ps: TestParticipant[] = [];
      const p = join(tracker.newAccount(), ps, 0);
      const answer = deferred<Reclaimed>();
      p.onReclaim = () => answer.promise;
      p.claim(2000);
      await turns(2);
      expect(p.reclaimCalls).to.equal(1);
      tracker.shutdown();
      expectBooks(tracker, [], { accounts: 0 });
      answer.resolve('collapsing');
      await tracker.settled();
      expectBooks(tracker, [], { accounts: 0, participants: 0 });
      expect(tracker.used).to.equal(0);
    });
  });

  describe('reentrancy', () => {
    it('tears down every participant of a closing account even when a pressure$ subscriber closes one of them meanwhile', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 600 }, { scheduler: queueScheduler });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const first = join(account, ps, 1);
      const second = join(account, ps, 2);
      const third = join(account, ps, 3);
      first.claim(400);
      second.claim(150);
      third.claim(100);
      const levels: string[] = [];
      tracker.pressure$.subscribe((level) => {
        levels.push(level);
        // Back to normal while the account's first participant is being torn down: close the
        // next one from here, in the middle of the account's tear-down.
        if (level === 'normal' && levels.length > 1) second.participation.close();
        expectBooks(tracker);
      });
      expect(levels).to.deep.equal(['high']);
      account.close();
      expect(levels).to.deep.equal(['high', 'normal']);
      expect([first.live, second.live, third.live]).to.deep.equal([false, false, false]);
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
      expect(tracker.used).to.equal(0);
    });

    it("lets a participant's reclaim() claim, release, close and open accounts on other handles", async () => {
      const clock = new FakeClock(100);
      const tracker = MemoryQuotaTracker.create({ max: 10_000, lowWater: 5000 }, { now: clock.now });
      const ps: TestParticipant[] = [];
      const victimAccount = tracker.newAccount();
      const grower = tracker.newAccount();
      const shrinker = tracker.newAccount();
      const doomed = tracker.newAccount();
      const victim = join(victimAccount, ps, 0);
      const growing = join(grower, ps, 50);
      const shrinking = join(shrinker, ps, 60);
      const closing = join(doomed, ps, 70);
      victim.claim(4000);
      growing.claim(1000);
      shrinking.claim(3000);
      closing.claim(2500);
      const opened: Account[] = [];
      victim.onReclaim = (self) => {
        growing.claim(500);
        shrinking.release(1000);
        doomed.close();
        const fresh = tracker.newAccount();
        opened.push(fresh);
        join(fresh, ps, clock.now()).claim(700);
        self.release(1000);
        self.collapse();
        return 'collapsing';
      };
      expectBooks(tracker, ps);

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 3 });
      expect(victimAccount.closed).to.equal(true);
      expect(doomed.closed).to.equal(true);
      expect(opened[0]!.closed).to.equal(false);
      // 1500 + 2000 + 700
      expect(tracker.used).to.equal(4200);
    });

    it('lets events$ and collapsed$ subscribers call back into the tracker', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000, lowWater: 4000 });
      const ps: TestParticipant[] = [];
      const first = tracker.newAccount();
      const second = tracker.newAccount();
      const spare = tracker.newAccount();
      const neighbour = tracker.newAccount();
      join(first, ps, 0).claim(4000);
      join(second, ps, 10).claim(4000);
      const sparePart = join(spare, ps, 5000);
      sparePart.claim(1000);
      const neighbourPart = join(neighbour, ps, 6000);
      neighbourPart.claim(2000);
      const reopened: Account[] = [];
      const seen: string[] = [];
      tracker.events$.subscribe((e) => {
        seen.push(e.type);
        if (e.type === 'victim' && e.account === first.id) neighbourPart.claim(500);
        if (e.type === 'collapse' && e.account === first.id) {
          const again = tracker.newAccount();
          reopened.push(again);
          join(again, ps, 7000).claim(100);
        }
        if (e.type === 'reclaim-end') neighbourPart.release(400);
        expectBooks(tracker);
      });
      first.collapsed$.subscribe(() => {
        neighbourPart.release(100);
        expectBooks(tracker);
      });
      second.collapsed$.subscribe(() => spare.close());
      expectBooks(tracker, ps);

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 2 });
      // 11_000, +500 -> first goes (7_500) +100 -100 -> second goes, spare closed (2_500) -> -400 at the end.
      expect(seen.filter((t) => t === 'victim')).to.have.length(2);
      expect(second.closed && spare.closed).to.equal(true);
      expect(reopened[0]!.closed).to.equal(false);
      expect(tracker.used).to.equal(2100);
    });

    it('reclaims in the same run a participant that started claiming inside reclaim()', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000, lowWater: 3000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const a = tracker.newAccount();
      const b = tracker.newAccount();
      const pb = join(b, ps, 100); // holds nothing yet: not a candidate when the run starts
      const pa = join(a, ps, 0);
      pa.claim(6000);
      pa.onReclaim = (self) => {
        pb.claim(7000);
        self.collapse();
        return 'collapsing';
      };
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
      expect(victimIds(events)).to.deep.equal([a.id, b.id]);
      expect(only(events, 'reclaim-end').map(timeless)).to.deep.equal([{ type: 'reclaim-end', used: 0, victims: 2, outcome: 'low-water' }]);
    });

    it('starts another run when a reclaim-end subscriber claims past max', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000, lowWater: 3000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const a = tracker.newAccount();
      const b = tracker.newAccount();
      const pb = join(b, ps, 100);
      pb.claim(1000);
      join(a, ps, 0).claim(6000);
      let refills = 0;
      tracker.events$.subscribe((e) => {
        if (e.type === 'reclaim-end' && refills++ === 0) pb.claim(5000);
      });
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
      expect(only(events, 'reclaim-start')).to.have.length(2);
      expect(victimIds(events)).to.deep.equal([a.id, b.id]);
      expect(tracker.used).to.equal(0);
    });
  });

  describe('synchronous scheduler', () => {
    it('with queueScheduler reclaims at the end of the claim that crossed max', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { scheduler: queueScheduler });
      const ps: TestParticipant[] = [];
      const a = tracker.newAccount();
      const p = join(a, ps, 0);
      p.claim(900);
      expectBooks(tracker, ps, { accounts: 1 });
      expect(a.closed).to.equal(false);
      p.claim(200);
      expect(a.closed).to.equal(true);
      expectBooks(tracker, ps, { accounts: 0 });
      expect(tracker.used).to.equal(0);
    });
  });

  describe('disabled tracking', () => {
    for (const [name, make] of [
      ['MemoryQuotaTracker.noop()', () => MemoryQuotaTracker.noop()],
      ['max: Infinity', () => MemoryQuotaTracker.create({ max: Infinity })],
    ] as const) {
      it(`${name} accepts every claim, keeps used at 0 and never reclaims`, async () => {
        const tracker = make();
        const events = recordEvents(tracker);
        expect(tracker.enabled).to.equal(false);
        expect(tracker.max).to.equal(Infinity);
        const account = tracker.newAccount();
        const child = account.newChild();
        const p = new TestParticipant(0);
        p.participation = child.registerParticipant(p);
        p.participation.claim(Number.MAX_SAFE_INTEGER);
        p.participation.claim(Number.MAX_SAFE_INTEGER);
        expect(tracker.used).to.equal(0);
        expectBooks(tracker, undefined, { accounts: 2, participants: 1 });
        expect(() => p.participation.claim(-1)).to.throw(RangeError);
        p.participation.release(5);
        await tracker.settled();
        expect(p.reclaimCalls).to.equal(0);
        expect(events).to.deep.equal([]);
        expect(tracker.stats).to.deep.include({ reclaimRuns: 0, participantErrors: 0 });
        tracker.reconfigure({ max: 10 });
        expect(tracker.max).to.equal(Infinity);
        expect(() => tracker.reconfigure({ max: -10 })).to.throw(ConfigError);
        account.close();
        child.close();
        expectBooks(tracker, undefined, { accounts: 0, participants: 0 });
      });
    }
  });
});
