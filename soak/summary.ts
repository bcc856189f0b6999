/**
 * The soak's closing report: what was exercised (streams, endings, values, claims, peaks,
 * reclamation, faults, churn, audits, heap) and every violation found, grouped by kind.
 *
 * @module
 */
import { args } from './args.js';
import type { EndState } from './audits.js';
import { mib } from './audits.js';
import { counters, elapsed, endings, faults, opened, participantErrors, violations } from './report.js';
import { sample } from './streams/stream.js';
import { retired, slots } from './trackers.js';

/** Prints the summary; sets the exit code to 1 if anything was violated. */
export function printSummary(driveEnd: number, rounds: number, end: EndState | null): void {
  const stats = slots.map((s) => s.tracker.stats);
  const sum = (f: (st: (typeof stats)[number]) => number): number => stats.reduce((a, st) => a + f(st), 0);
  const claims = slots.reduce((a, s) => a + s.claims, retired.claims);
  const peaks = slots.map((s) => `${s.name} ${mib(s.peak)} of max ${mib(s.peakMax)} (${Math.round((100 * s.peak) / s.peakMax)} %)`);
  const line = (label: string, text: string): void => console.log(`  ${label.padEnd(13)} ${text}`);
  console.log(
    `soak summary (seed ${args.seed}${args.hostile ? ', hostile shapes on' : ''}; drove ${(driveEnd / 1000).toFixed(1)} s, ${counters.steps} steps, total ${(elapsed() / 1000).toFixed(1)} s)`,
  );
  line('streams', `${opened.total()} opened: ${opened}`);
  line('endings', `${endings}`);
  line('values', `${counters.valuesPushed} pushed, ${counters.valuesDelivered} delivered`);
  line('claims', `${claims} (book increases seen on usage$)`);
  line('peak used', `${peaks.join('; ')}; retired ephemeral trackers up to ${Math.round(100 * retired.peakRatio)} %`);
  line(
    'reclamation',
    `${sum((st) => st.reclaimRuns) + retired.reclaimRuns} runs, ${sum((st) => st.victims) + retired.victims} victims, ` +
      `${sum((st) => st.accountsCollapsed) + retired.accountsCollapsed} accounts collapsed, ${mib(sum((st) => st.bytesReclaimed) + retired.bytesReclaimed)} reclaimed`,
  );
  line('faults', `${faults.total()} injected: ${faults}`);
  line('part. errors', `${participantErrors.total()} events: ${participantErrors}`);
  line('churn', `${counters.reconfigures} reconfigures (+${counters.reconfiguresRejected} invalid, rejected), ${counters.gcs} forced gc, ${counters.shutdowns} tracker shutdowns`);
  line('books', `${counters.audits} audits (after every step, inside every collapse event), ${counters.quiescentChecks} settled checks; wind-down: ${rounds} gc rounds`);
  line('rxjs', `${counters.stoppedNotifications} notifications to stopped subscribers (not counted as violations)`);
  if (end !== null) {
    line(
      'heap',
      `heapUsed after gc: start ${mib(end.heapStart)}, end ${mib(end.heapEnd)} (${end.growth >= 0 ? '+' : ''}${mib(end.growth)}; tolerance ${mib(end.tolerance)}); ` +
        `rss ${mib(process.memoryUsage().rss)}; ${sample.length - end.sampledAlive}/${sample.length} sampled stream objects collected`,
    );
  }
  if (counters.violationCount > 0) {
    console.log(`FAIL: ${counters.violationCount} violation(s), by kind (count, first occurrence):`);
    for (const { count, first } of violations.values()) console.log(`  ${String(count).padStart(6)} × ${first}`);
    process.exitCode = 1;
  } else {
    console.log('PASS: no violation');
  }
}
