/**
 * Churn of the trackers themselves: valid and invalid `reconfigure`s, and the ephemeral
 * tracker shut down with its streams running (each must end, and new work be refused).
 *
 * @module
 */
import { of } from 'rxjs';
import { ConfigError, type MemquotaConfig, MemquotaError, memquota, memquotaQueue } from '../index.js';
import { rng } from './random.js';
import { counters, describeError, violation } from './report.js';
import { QueueStream, ReturnedIteratorStream } from './streams/index.js';
import { KiB, makeSlot, MiB, retired, type Slot, slots } from './trackers.js';

export const configs: readonly (() => MemquotaConfig)[] = [
  () => ({ max: rng.between(256 * KiB, 4 * MiB) }),
  () => {
    const max = rng.between(256 * KiB, 4 * MiB);
    return { max, lowWater: Math.floor(max * (0.3 + rng.next() * 0.6)) };
  },
  () => ({ max: 2 * MiB }),
];
export const invalidConfigs: readonly MemquotaConfig[] = [
  { max: -1 },
  { max: 1000, lowWater: 990 },
  { max: 1.5 },
  { lowWater: 10 },
  { max: 1000, softMax: 2000 },
];

export function reconfigure(slot: Slot): void {
  const { max, lowWater, softMax } = slot.tracker;
  if (rng.chance(0.1)) {
    const bad = rng.pick(invalidConfigs);
    try {
      slot.tracker.reconfigure(bad);
      violation(`reconfigure(${JSON.stringify(bad)}) was accepted`);
    } catch (err) {
      counters.reconfiguresRejected++;
      if (!(err instanceof ConfigError)) violation(`reconfigure(${JSON.stringify(bad)}) threw ${describeError(err)}, not ConfigError`);
      if (slot.tracker.max !== max || slot.tracker.lowWater !== lowWater || slot.tracker.softMax !== softMax) {
        violation(`a rejected reconfigure changed the config of ${slot.name}`);
      }
    }
    return;
  }
  counters.reconfigures++;
  slot.tracker.reconfigure(rng.pick(configs)());
}

/** Shuts the ephemeral tracker down with its streams running and checks they all end. */
export async function rotateEphemeral(): Promise<void> {
  const index = slots.findIndex((s) => s.ephemeral);
  const old = slots[index]!;
  const streams = [...old.streams];
  const stale = old.connections.find((c) => !c.closed) ?? old.servers[0]!;
  old.tracker.shutdown();
  counters.shutdowns++;
  slots[index] = makeSlot(`C${++counters.ephemeralCount}`, undefined, 'oldest', true);
  if (old.tracker.used !== 0) violation(`${old.name}: used ${old.tracker.used} after shutdown`);
  const report = old.tracker.audit();
  if (report.accounts !== 0 || report.participants !== 0) violation(`${old.name}: ${report.accounts} accounts, ${report.participants} participants after shutdown`);
  // A new stream on the shut-down tracker is refused.
  let refusal: unknown;
  of(1)
    .pipe(memquota(stale))
    .subscribe({ error: (err: unknown) => (refusal = err) });
  if (!(refusal instanceof MemquotaError && refusal.kind === 'TrackerShutdown')) violation(`memquota on a shut-down tracker: ${describeError(refusal)}`);
  try {
    memquotaQueue(stale);
    violation('memquotaQueue on a shut-down tracker was accepted');
  } catch (err) {
    if (!(err instanceof MemquotaError && err.kind === 'TrackerShutdown')) violation(`memquotaQueue on a shut-down tracker: ${describeError(err)}`);
  }
  // Every stream has been told, synchronously; a channel's reader learns it at its next pull.
  for (const s of streams) {
    s.step();
    if (s.ended) continue;
    // A reader pulling with next() learns the end in a microtask, after this check.
    if ((s instanceof QueueStream || s instanceof ReturnedIteratorStream) && s.senderClosed()) continue;
    violation(`${s.kind} #${s.id} on ${old.name} still running after shutdown`);
    s.finish(`${s.kind}: stuck after shutdown`);
  }
  old.subscriptions.unsubscribe();
  retired.claims += old.claims;
  const st = old.tracker.stats;
  retired.reclaimRuns += st.reclaimRuns;
  retired.victims += st.victims;
  retired.accountsCollapsed += st.accountsCollapsed;
  retired.bytesReclaimed += st.bytesReclaimed;
  retired.peakRatio = Math.max(retired.peakRatio, old.peak / old.peakMax);
}
