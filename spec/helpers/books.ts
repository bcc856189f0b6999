/**
 * The one spec helper that checks the books.
 *
 * `expectBooks(tracker, participants)` asserts, after any step:
 * - `tracker.audit()` finds no broken invariant (used = Σ live claims, per-account sums,
 *   no torn-down record left in the books, no dangling parent/child link);
 * - `tracker.used` equals the sum of what the spec's own live test participants say they
 *   claimed (the spec's ledger, independent of the tracker's records);
 * - optionally, how many accounts and participants are still in the books.
 */
import { expect } from 'chai';
import type { MemoryQuotaTracker, Participant, Participation, Reclaimed } from '../../index.js';

/** A participant for specs: keeps its own ledger of what it claimed. */
export class TestParticipant implements Participant {
  /** Bytes this participant believes it holds. */
  held = 0;
  /** Set once it collapsed (reclaimed) or was torn down by the spec. */
  collapsed = false;
  /** How many times `reclaim()` was called. */
  reclaimCalls = 0;
  participation!: Participation;
  /** What `reclaim()` does; default: free everything and collapse. */
  onReclaim: (self: TestParticipant) => Reclaimed | PromiseLike<Reclaimed> = (self) => {
    self.collapse();
    return 'collapsing';
  };
  /** What `getOldest()` does; default: `oldest` while holding data. */
  onGetOldest: (self: TestParticipant) => number | undefined = (self) => (self.held > 0 ? self.oldest : undefined);

  constructor(public oldest: number | undefined = undefined) {}

  getOldest(): number | undefined {
    return this.onGetOldest(this);
  }

  reclaim(): Reclaimed | PromiseLike<Reclaimed> {
    this.reclaimCalls++;
    return this.onReclaim(this);
  }

  /**
   * Claims `bytes` (data dating from `at`). The ledger is updated before the claim, as RxJS
   * updates state before it emits: subscribers the claim reaches (pressure$, usage$, events$)
   * may release or claim on this participant, and must find the ledger true. A claim that
   * throws changed nothing, so the ledger is put back.
   */
  claim(bytes: number, at?: number): void {
    const held = this.held;
    const oldest = this.oldest;
    this.held += bytes;
    if (at !== undefined && (this.oldest === undefined || held === 0)) this.oldest = at;
    try {
      this.participation.claim(bytes);
    } catch (err) {
      this.held = held;
      this.oldest = oldest;
      throw err;
    }
  }

  /** Releases `bytes`; the ledger is updated first (see `claim`). */
  release(bytes: number): void {
    const held = this.held;
    this.held = Math.max(0, held - bytes);
    try {
      this.participation.release(bytes);
    } catch (err) {
      this.held = held;
      throw err;
    }
  }

  /** Frees everything it holds (as a collapsing participant does) and forgets its claims. */
  collapse(): void {
    this.collapsed = true;
    this.held = 0;
  }

  /** Whether the tracker still counts this participant. */
  get live(): boolean {
    return !this.participation.closed;
  }
}

/** The live test participants' ledger: what they say they hold. */
export function ledger(participants: Iterable<TestParticipant>): number {
  let sum = 0;
  for (const p of participants) if (p.live) sum += p.held;
  return sum;
}

/**
 * Asserts that the books balance. `participants` (when given) are every test participant the
 * scenario made; the dead ones are skipped.
 */
export function expectBooks(
  tracker: MemoryQuotaTracker,
  participants?: Iterable<TestParticipant>,
  records?: { accounts?: number; participants?: number },
): void {
  const report = tracker.audit();
  expect(report.problems, 'tracker.audit() problems').to.deep.equal([]);
  expect(tracker.used, 'tracker.used vs records').to.equal(report.claimed);
  if (participants !== undefined) {
    expect(tracker.used, 'tracker.used vs the live participants\' own ledger').to.equal(ledger(participants));
  }
  if (records?.accounts !== undefined) expect(report.accounts, 'open accounts').to.equal(records.accounts);
  if (records?.participants !== undefined) expect(report.participants, 'live participants').to.equal(records.participants);
}

/** A clock for the tracker's `now` option that moves only when the spec says so. */
export class FakeClock {
  constructor(public time = 0) {}
  /** The current time, in ms; pass `clock.now` as the tracker's `now` option. */
  readonly now = (): number => this.time;
  /** Moves the clock forward by `ms` and returns the new time. */
  advance(ms: number): number {
    this.time += ms;
    return this.time;
  }
}

/** Everything a tracker's `events$` emits from now on, in order. */
export function recordEvents(tracker: MemoryQuotaTracker): import('../../index.js').MemquotaEvent[] {
  const events: import('../../index.js').MemquotaEvent[] = [];
  tracker.events$.subscribe((e) => events.push(e));
  return events;
}

/** The ids of the `victim` events among `events`, in order. */
export function victimIds(events: readonly import('../../index.js').MemquotaEvent[]): number[] {
  return events.flatMap((e) => (e.type === 'victim' ? [e.account] : []));
}

/** Lets `rounds` turns of the event loop pass (each: pending microtasks, then a `setImmediate`). */
export async function turns(rounds = 1): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Runs the garbage collector (the specs run with `--expose-gc`) and turns the event loop until
 * `done()` holds, so that `FinalizationRegistry` callbacks get their chance. Returns how many
 * rounds it took; throws if `done()` never held within `maxRounds`.
 */
export async function collectGarbageUntil(done: () => boolean, maxRounds = 200): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('collectGarbageUntil needs node --expose-gc');
  for (let round = 1; round <= maxRounds; round++) {
    gc();
    await turns(1);
    if (done()) return round;
  }
  throw new Error(`the garbage collector did not finish the job in ${maxRounds} rounds`);
}

/**
 * Registers a new {@link TestParticipant} in `account` (its data dating from `oldest`, on the
 * tracker's clock) and adds it to the scenario's `participants`.
 */
export function join(
  account: import('../../index.js').Account,
  participants: TestParticipant[],
  oldest?: number,
): TestParticipant {
  const participant = new TestParticipant(oldest);
  participant.participation = account.registerParticipant(participant);
  participants.push(participant);
  return participant;
}

/** Every reason `account.collapsed$` emits from now on (at most one), and whether it completed. */
export function watchCollapse(account: import('../../index.js').Account): {
  reasons: import('../../index.js').CollapseReason[];
  completed: boolean;
} {
  const watch = { reasons: [] as import('../../index.js').CollapseReason[], completed: false };
  account.collapsed$.subscribe({
    next: (reason) => watch.reasons.push(reason),
    complete: () => (watch.completed = true),
  });
  return watch;
}
