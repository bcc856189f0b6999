/**
 * B3: the price of the books. One `claim` + `release` pair on a participation against the
 * least a bookkeeper could do: a plain object field incremented and decremented by the same
 * bytes.
 *
 * Both sides cycle over 1024 participants (1024 plain objects for the baseline) so that
 * neither is measured on a single hot object.
 *
 * @module
 */
import { MemoryQuotaTracker, type Participant, type Participation } from '../index.js';
import { comparisonDetails, sideBySide, upperRow, type LateRow, type Rounds } from './harness.js';
import { noClaims, probeBooks } from './probe.js';

const PARTICIPANTS = 1024;
const TARGET = 3;

/** Runs B3 and returns its row. */
export async function benchClaimRelease(rounds: Rounds, quick: boolean): Promise<LateRow> {
  const pairs = quick ? 300_000 : 1_000_000;
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
  const slots: { used: number }[] = [];
  for (let i = 0; i < PARTICIPANTS; i++) slots.push({ used: 0 });

  // Neither loop reads a total per iteration (a read of tracker.used was 14 % of the subject's
  // time): each leaves its effect in the heap, and the total is read once at the end.
  const baseline = (): number => {
    for (let i = 0; i < pairs; i++) {
      const bytes = 8 + (i & 63);
      const slot = slots[i & (PARTICIPANTS - 1)]!;
      slot.used += bytes;
      slot.used -= bytes;
    }
    let check = 0;
    for (const slot of slots) check += slot.used;
    return check;
  };
  const subject = (): number => {
    for (let i = 0; i < pairs; i++) {
      const bytes = 8 + (i & 63);
      const p = participations[i & (PARTICIPANTS - 1)]!;
      p.claim(bytes);
      p.release(bytes);
    }
    return tracker.used;
  };

  const result = await sideBySide(baseline, subject, pairs, rounds);
  // The probe runs later: a usage$ watcher changes the tracker's type feedback (see probe.ts).
  return async () => {
    const seen = await probeBooks(tracker, subject);
    const problems = tracker.audit().problems;
    if (problems.length > 0 || tracker.used !== 0) throw new Error(`B3 left the books unbalanced: ${problems.join('; ')}`);
    for (const p of participations) p.close();
    account.close();
    tracker.shutdown();
    void keep;
    return upperRow(
      'B3',
      'claim+release pair vs object field += / -=',
      result.ratio,
      '×',
      TARGET,
      { pairs, claims: seen.claims, releases: seen.releases, peakBytes: seen.peakBytes, ...comparisonDetails(result, 'Pair') },
      noClaims(seen),
    );
  };
}
