/**
 * What the soak found: violations (grouped by message), tallies and counters, the process-wide
 * watchers (unhandled rejections, uncaught exceptions, RxJS unhandled errors), and the
 * injected-fault error type.
 *
 * @module
 */
import { config as rxjsConfig } from 'rxjs';

export const started = performance.now();
export const elapsed = (): number => Math.round(performance.now() - started);
/** Violations grouped by their message with the numbers taken out: count and first example. */
export const violations = new Map<string, { count: number; first: string }>();

export function violation(message: string): void {
  counters.violationCount++;
  const key = message.replace(/\d+/g, '#');
  const group = violations.get(key);
  if (group !== undefined) group.count++;
  else if (violations.size < 40) violations.set(key, { count: 1, first: `[${elapsed()} ms] ${message}` });
}

export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Counters of the run (a single object so every module updates the same figures). */
export const counters = {
  violationCount: 0,
  stoppedNotifications: 0,
  valuesPushed: 0,
  valuesDelivered: 0,
  audits: 0,
  reconfigures: 0,
  reconfiguresRejected: 0,
  gcs: 0,
  shutdowns: 0,
  quiescentChecks: 0,
  steps: 0,
  ephemeralCount: 0,
};

/** Turns anything unexpected that escapes into a violation. */
export function installWatchers(): void {
  process.on('unhandledRejection', (reason) => violation(`unhandled rejection: ${describeError(reason)}`));
  process.on('uncaughtException', (err) => violation(`uncaught exception: ${describeError(err)}`));
  rxjsConfig.onUnhandledError = (err) => violation(`RxJS unhandled error: ${describeError(err)}`);
  // Not a violation: RxJS's own sources do it (timer completes right after a next that made the
  // subscriber unsubscribe). Counted for the summary.
  rxjsConfig.onStoppedNotification = () => void counters.stoppedNotifications++;
}

/** Counts by name. */
export class Tally {
  readonly counts = new Map<string, number>();
  add(name: string, n = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + n);
  }
  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }
  total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }
  toString(): string {
    return [...this.counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  }
}

export const opened = new Tally();
export const endings = new Tally();
export const faults = new Tally();
export const participantErrors = new Tally();
export const events = new Tally();

/** An error the soak injects on purpose; anything else reaching a consumer is a violation. */
export class SoakFault extends Error {
  constructor(readonly fault: string) {
    super(`injected fault: ${fault}`);
    this.name = 'SoakFault';
  }
}
