/**
 * B3: the price of the books. One `claim` + `release` pair on a participation against the
 * least a bookkeeper could do: a bare `Map` lookup plus a counter update, twice.
 *
 * Both sides cycle over 1024 participants so that neither is measured on a single hot object.
 *
 * @module
 */
import { MemoryQuotaTracker, type Participant, type Participation } from '../index.js';
import { ratioRow, sideBySide, type BenchRow } from './harness.js';

const PARTICIPANTS = 1024;
const PAIRS = 2_000_000;
const TARGET = 3;

/** Runs B3 and returns its row. */
export function benchClaimRelease(): BenchRow {
  const tracker = MemoryQuotaTracker.create({ max: 1 << 30 });
  const account = tracker.newAccount();
  // The tracker holds participants weakly: keep them here.
  const keep: Participant[] = [];
  const participations: Participation[] = [];
  for (let i = 0; i < PARTICIPANTS; i++) {
    const participant: Participant = { getOldest: () => undefined, reclaim: () => 'collapsing' };
    keep.push(participant);
    participations.push(account.registerParticipant(participant));
  }

  interface Slot {
    used: number;
  }
  const map = new Map<number, Slot>();
  for (let i = 0; i < PARTICIPANTS; i++) map.set(i, { used: 0 });
  let total = 0;

  const baseline = (): number => {
    for (let i = 0; i < PAIRS; i++) {
      const bytes = 8 + (i & 63);
      const claimSlot = map.get(i & (PARTICIPANTS - 1))!;
      claimSlot.used += bytes;
      total += bytes;
      const releaseSlot = map.get(i & (PARTICIPANTS - 1))!;
      releaseSlot.used -= bytes;
      total -= bytes;
    }
    return total;
  };
  const subject = (): number => {
    for (let i = 0; i < PAIRS; i++) {
      const bytes = 8 + (i & 63);
      const p = participations[i & (PARTICIPANTS - 1)]!;
      p.claim(bytes);
      p.release(bytes);
    }
    return tracker.used;
  };

  const result = sideBySide(baseline, subject, PAIRS);
  const problems = tracker.audit().problems;
  if (problems.length > 0 || tracker.used !== 0) throw new Error(`B3 left the books unbalanced: ${problems.join('; ')}`);
  for (const p of participations) p.close();
  account.close();
  tracker.shutdown();
  void keep;
  return ratioRow('B3', 'claim+release pair vs Map lookup+counter', result, TARGET, PAIRS, 'Pair');
}
