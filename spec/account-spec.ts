import { expect } from 'chai';
import { queueScheduler } from 'rxjs';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import { Account, type WeakAccount } from '../lib/handles.js';
import { MemquotaError } from '../lib/errors.js';
import type { Participant } from '../lib/types.js';
import { TestParticipant, collectGarbageUntil, expectBooks, join, recordEvents, victimIds, watchCollapse } from './helpers/books.js';
import { expectKind } from './helpers/errors.js';


describe('Account', () => {
  describe('opening and closing', () => {
    it('gives each new account a distinct id and counts it in the books', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const a = tracker.newAccount();
      const b = tracker.newAccount();
      const c = a.newChild();
      expect(new Set([a.id, b.id, c.id]).size).to.equal(3);
      expect(a.tracker).to.equal(tracker);
      expect([a.closed, b.closed, c.closed]).to.deep.equal([false, false, false]);
      expectBooks(tracker, [], { accounts: 3, participants: 0 });
      expect(tracker.stats.accounts).to.equal(3);
    });

    it('releases everything its participants claimed when the last handle closes', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const id = account.id;
      const watch = watchCollapse(account);
      const events = recordEvents(tracker);
      const first = join(account, ps, 0);
      const second = join(account, ps, 0);
      first.claim(300);
      second.claim(400);
      expectBooks(tracker, ps, { accounts: 1, participants: 2 });

      account.close();
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
      expect(tracker.used).to.equal(0);
      expect(watch).to.deep.equal({ reasons: ['closed'], completed: true });
      expect(events).to.deep.equal([{ type: 'collapse', account: id, reason: 'closed', released: 700 }]);
      expect(account.closed).to.equal(true);
      expect(first.live || second.live).to.equal(false);
      // As tor-memquota: the account is looked up first, and it is gone.
      expectKind(() => first.participation.claim(1), 'AccountClosed');
      expect(() => account.close(), 'closing twice').not.to.throw();
      expectBooks(tracker, ps, { accounts: 0 });
    });

    it('stays open while any clone is open, and every closed handle says AccountClosed', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      const original = tracker.newAccount();
      const watch = watchCollapse(original);
      const clone = original.clone();
      const cloneOfClone = clone.clone();
      expect(clone.id).to.equal(original.id);
      const p = join(original, ps, 0);
      p.claim(500);

      original.close();
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(original.closed).to.equal(true);
      expect(clone.closed).to.equal(false);
      for (const [what, call] of [
        ['newChild', () => original.newChild()],
        ['clone', () => original.clone()],
        ['registerParticipant', () => original.registerParticipant(new TestParticipant())],
        ['registerParticipantWith', () => original.registerParticipantWith(() => new TestParticipant())],
        ['addParent', () => original.addParent(tracker.newAccount())],
        ['id', () => original.id],
        ['collapsed$', () => original.collapsed$],
        ['downgrade', () => original.downgrade()],
        ['as a parent', () => tracker.newAccount(original)],
      ] as const) {
        expectKind(call, 'AccountClosed', what);
      }
      // The failed calls changed nothing (the extra accounts made for addParent aside).
      expect(p.live).to.equal(true);
      clone.newChild().close();
      p.claim(100);
      expectBooks(tracker, ps, { participants: 1 });

      clone.close();
      expect(watch.reasons).to.deep.equal([]);
      cloneOfClone.close();
      expect(watch.reasons).to.deep.equal(['closed']);
      expect(p.live).to.equal(false);
      expectKind(() => cloneOfClone.newChild(), 'AccountClosed');
      expectBooks(tracker, ps, { participants: 0 });
      expect(tracker.used).to.equal(0);
    });

    it('closes with using, through Symbol.dispose', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      let weak: WeakAccount;
      {
        using account = tracker.newAccount();
        weak = account.downgrade();
        join(account, ps, 0).claim(42);
        expectBooks(tracker, ps, { accounts: 1 });
      }
      expect(weak.closed).to.equal(true);
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
    });

    it('does not close its children when a parent closes', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      const parent = tracker.newAccount();
      const child = parent.newChild();
      const grandchild = child.newChild();
      const watches = [child, grandchild].map(watchCollapse);
      join(child, ps, 0).claim(10);
      join(grandchild, ps, 0).claim(20);
      parent.close();
      expectBooks(tracker, ps, { accounts: 2, participants: 2 });
      expect(watches.map((w) => w.reasons)).to.deep.equal([[], []]);
      join(child, ps, 0).claim(5);
      expectBooks(tracker, ps, { accounts: 2, participants: 3 });
    });

    it('counts a handle that was garbage-collected without close() as closed', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const ps: TestParticipant[] = [];
      // Only the weak handle and the participant survive this function.
      const weak = ((): WeakAccount => {
        const account = tracker.newAccount();
        join(account, ps, 0).claim(1234);
        return account.downgrade();
      })();
      const watch = { reasons: [] as string[] };
      weak.collapsed$.subscribe((reason) => watch.reasons.push(reason));
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });

      await collectGarbageUntil(() => weak.closed);
      expect(watch.reasons).to.deep.equal(['closed']);
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
      expect(tracker.used).to.equal(0);
      expect(ps[0]!.live).to.equal(false);
    });
  });

  describe('parents and children', () => {
    it('accepts several parents, and reclaiming any of them takes the child', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000, lowWater: 3000 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const mother = tracker.newAccount();
      const father = tracker.newAccount();
      const child = tracker.newAccount(mother);
      child.addParent(father);
      join(mother, ps, 3000).claim(1000);
      join(father, ps, 1000).claim(1000);
      join(child, ps, 5000).claim(2000);
      expectBooks(tracker, ps, { accounts: 3 });
      join(tracker.newAccount(), ps, 9000).claim(2000);

      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 2 });
      expect(victimIds(events)).to.deep.equal([father.id]);
      expect(events.find((e) => e.type === 'victim')).to.deep.include({ accounts: 2 });
      expect([mother.closed, father.closed, child.closed]).to.deep.equal([false, true, true]);
      expect(tracker.used).to.equal(3000);
    });

    it('refuses itself or a descendant as a parent (a cycle) with TypeError, changing nothing', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000, lowWater: 2500 });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const root = tracker.newAccount();
      const middle = root.newChild();
      const leaf = middle.newChild();
      const sideParent = tracker.newAccount();
      leaf.addParent(sideParent);
      for (const [what, child, parent] of [
        ['itself', root, root],
        ['its child', root, middle],
        ['its grandchild', root, leaf],
        ['a grandchild through a second parent', sideParent, leaf],
      ] as const) {
        expect(() => child.addParent(parent), what).to.throw(TypeError, /cycle/);
      }
      expectBooks(tracker, ps, { accounts: 4 });
      // Nothing was linked: reclaiming the leaf does not take the root.
      join(root, ps, 5000).claim(1000);
      join(leaf, ps, 0).claim(4500);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 3 });
      expect(victimIds(events)).to.deep.equal([leaf.id]);
      expect(root.closed).to.equal(false);
    });

    it('refuses the same parent twice with ChildAccountAlreadyExists', () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000 });
      const parent = tracker.newAccount();
      const child = parent.newChild();
      expectKind(() => child.addParent(parent), 'ChildAccountAlreadyExists');
      const other = tracker.newAccount();
      child.addParent(other);
      expectKind(() => child.addParent(other.clone()), 'ChildAccountAlreadyExists', 'through another handle');
      expectBooks(tracker, [], { accounts: 3 });
    });

    it('refuses a closed parent, a foreign account and a non-account', () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000 });
      const other = MemoryQuotaTracker.create({ max: 5000 });
      const noop = MemoryQuotaTracker.noop();
      const account = tracker.newAccount();
      const gone = tracker.newAccount();
      const goneClone = gone.clone();
      gone.close();
      goneClone.close();
      expectKind(() => account.addParent(goneClone), 'AccountClosed');
      expectKind(() => tracker.newAccount(goneClone), 'AccountClosed');
      expect(() => account.addParent(other.newAccount())).to.throw(TypeError, /another tracker/);
      expect(() => tracker.newAccount(other.newAccount())).to.throw(TypeError, /another tracker/);
      expect(() => account.addParent(noop.newAccount())).to.throw(TypeError, /no-op/);
      expect(() => account.addParent({} as Account)).to.throw(TypeError, /Account/);
      expect(() => tracker.newAccount(null as unknown as Account)).to.throw(TypeError);
      expectBooks(tracker, [], { accounts: 1 });
      expectBooks(other, [], { accounts: 2 });
    });
  });

  describe('weak handles', () => {
    it('upgrade() gives a new handle while the account is open', () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000 });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const weak = account.downgrade();
      expect(weak.id).to.equal(account.id);
      const upgraded = weak.upgrade();
      account.close();
      expect(weak.closed).to.equal(false);
      join(upgraded, ps, 0).claim(10);
      expectBooks(tracker, ps, { accounts: 1 });
      upgraded.close();
      expect(weak.closed).to.equal(true);
      expectKind(() => weak.upgrade(), 'AccountClosed');
      expectBooks(tracker, ps, { accounts: 0 });
    });

    it('does not keep the account open', () => {
      const tracker = MemoryQuotaTracker.create({ max: 5000 });
      const account = tracker.newAccount();
      const weak = account.downgrade();
      const watch = { reasons: [] as string[] };
      weak.collapsed$.subscribe((r) => watch.reasons.push(r));
      account.close();
      expect(watch.reasons).to.deep.equal(['closed']);
      expectBooks(tracker, [], { accounts: 0 });
    });
  });

  describe('collapsed$', () => {
    it('emits the reason once, completes, and replays it to late subscribers', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const early = watchCollapse(account);
      const unsubscribed: string[] = [];
      account.collapsed$.subscribe((r) => unsubscribed.push(r)).unsubscribe();
      join(account, ps, 0).claim(2000);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
      expect(early).to.deep.equal({ reasons: ['reclaimed'], completed: true });
      expect(unsubscribed).to.deep.equal([]);
      expect(watchCollapse(account)).to.deep.equal({ reasons: ['reclaimed'], completed: true });
    });
  });

  describe('registering participants', () => {
    it('refuses something that is not a participant with TypeError', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000 });
      const account = tracker.newAccount();
      for (const bad of [null, undefined, {}, { getOldest: () => 0 }, { reclaim: () => 'collapsing' }, 42]) {
        expect(() => account.registerParticipant(bad as unknown as Participant)).to.throw(TypeError);
      }
      expect(() => account.registerParticipantWith(null as unknown as () => Participant)).to.throw(TypeError);
      expectBooks(tracker, [], { accounts: 1, participants: 0 });
    });

    it('registerParticipantWith lets the participant claim inside its constructor', async () => {
      const clock = { t: 100 };
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { now: () => clock.t });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const built = account.registerParticipantWith((participation) => {
        const p = new TestParticipant();
        p.participation = participation;
        p.claim(300, tracker.now());
        expect(participation.claimed).to.equal(300);
        expect(tracker.used).to.equal(300);
        return p;
      });
      ps.push(built);
      expectBooks(tracker, ps, { participants: 1 });
      expect(built.oldest).to.equal(100);
      // It is a real participant now: it is asked to reclaim like any other.
      built.claim(800);
      await tracker.settled();
      expect(built.reclaimCalls).to.equal(1);
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
    });

    it('registerParticipantWith fails with AccountClosed when reclamation takes its account during construction', () => {
      const tracker = MemoryQuotaTracker.create({ max: 7000, lowWater: 3500 }, { scheduler: queueScheduler });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const sibling = join(account, ps, 0);
      sibling.claim(1000);
      const neighbour = join(tracker.newAccount(), ps, 50);
      neighbour.claim(3000);
      let constructed: TestParticipant | undefined;
      let threw: unknown;
      try {
        account.registerParticipantWith((participation) => {
          const p = new TestParticipant();
          p.participation = participation;
          constructed = p;
          // Crosses max: with queueScheduler reclamation runs at the end of this claim, and the
          // oldest data (the sibling's) makes this account the victim.
          p.claim(4000, 100);
          expect(participation.closed, 'torn down during construction').to.equal(true);
          return p;
        });
      } catch (err) {
        threw = err;
      }
      expect(threw).to.be.instanceOf(MemquotaError).with.property('kind', 'AccountClosed');
      expect((threw as Error).message).to.match(/was reclaimed/);
      ps.push(constructed!);
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(tracker.used).to.equal(3000);
      expect(victimIds(events)).to.deep.equal([account.id]);
      expect(account.closed).to.equal(true);
    });

    it('registerParticipantWith fails with AccountClosed when its construction stand-in makes its account the victim', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000, lowWater: 5000 }, { scheduler: queueScheduler });
      const events = recordEvents(tracker);
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const old = join(tracker.newAccount(), ps, 0);
      old.claim(1000);
      let constructed: TestParticipant | undefined;
      // The stand-in has no data age yet, but holds far more than the slop: the first victim.
      expect(() =>
        account.registerParticipantWith((participation) => {
          constructed = new TestParticipant();
          constructed.participation = participation;
          constructed.claim(20_000, 100);
          return constructed;
        }),
      )
        .to.throw(MemquotaError, /was reclaimed/)
        .with.property('kind', 'AccountClosed');
      ps.push(constructed!);
      expectBooks(tracker, ps, { accounts: 1, participants: 1 });
      expect(victimIds(events)).to.deep.equal([account.id]);
      expect(tracker.used).to.equal(1000);
      expect(old.live).to.equal(true);
    });

    it('registerParticipantWith releases what make() claimed when make() throws or returns no participant', () => {
      const tracker = MemoryQuotaTracker.create({ max: 10_000 });
      const account = tracker.newAccount();
      const boom = new Error('constructor failed');
      let handle: { claim(n: number): void; closed: boolean } | undefined;
      expect(() =>
        account.registerParticipantWith((participation) => {
          handle = participation;
          participation.claim(700);
          throw boom;
        }),
      ).to.throw(boom);
      expectBooks(tracker, [], { accounts: 1, participants: 0 });
      expect(tracker.used).to.equal(0);
      expect(handle!.closed).to.equal(true);
      expectKind(() => handle!.claim(1), 'ParticipantShutdown'); // its account is open

      expect(() =>
        account.registerParticipantWith((participation) => {
          participation.claim(900);
          return { getOldest: () => 0 } as unknown as Participant;
        }),
      ).to.throw(TypeError);
      expectBooks(tracker, [], { accounts: 1, participants: 0 });
      expect(tracker.used).to.equal(0);
    });

    it('refuses registration on a reclaimed account, on every clone', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 });
      const ps: TestParticipant[] = [];
      const account = tracker.newAccount();
      const clone = account.clone();
      const weak = account.downgrade();
      join(account, ps, 0).claim(2000);
      await tracker.settled();
      expectBooks(tracker, ps, { accounts: 0 });
      for (const handle of [account, clone]) {
        expectKind(() => handle.registerParticipant(new TestParticipant()), 'AccountClosed');
        expectKind(() => handle.newChild(), 'AccountClosed');
        expectKind(() => handle.clone(), 'AccountClosed');
        expect(handle.closed).to.equal(true);
      }
      expectKind(() => weak.upgrade(), 'AccountClosed');
      expect(() => tracker.newAccount(account)).to.throw(MemquotaError, /reclaimed/);
      const orphan = tracker.newAccount();
      expectKind(() => orphan.addParent(account), 'AccountClosed', 'a reclaimed parent');
      orphan.close();
      expectBooks(tracker, ps, { accounts: 0, participants: 0 });
    });
  });
});
