/**
 * Timing helpers shared by the benchmarks: side-by-side runs, medians, and the result rows.
 *
 * Ratios are always measured in one process, in CPU time ({@link cpuMs}), baseline and
 * subject alternating round by round
 * (A/B/A/B…, after warm-up rounds, with a full GC before each timed run when the process has
 * `--expose-gc`), so that JIT state, GC state and machine noise hit both alike; the ratio
 * reported is the median of the per-round ratios, and its spread (lowest and highest
 * per-round ratio) is printed beside it. Every timed function returns a value that goes to
 * {@link sink}, so the JIT cannot drop the work.
 *
 * @module
 */

/**
 * What a row's figure says about its target.
 * - `ok` / `MISS`: the figure met / missed the target.
 * - `WARNING`: the quota was not exercised (no claims where claims were meant, no victims
 *   where victims were meant), so there is no honest figure to hold against the target.
 * - `skipped`: not measured (a prerequisite is missing, or `--quick`); the note says why.
 * - `info`: a figure printed for scale, with no target of its own.
 */
export type Verdict = 'ok' | 'MISS' | 'WARNING' | 'skipped' | 'info';

/** One row of the results table (and of the results file). */
export interface BenchRow {
  /** `B1` … `B8` (sub-rows share their id). */
  readonly id: string;
  /** What was measured, in one line. */
  readonly what: string;
  /** The headline figure, or `null` when there is none (WARNING, skipped). */
  readonly value: number | null;
  /** Its unit (`×`, `ms`, `bytes`, …). */
  readonly unit: string;
  /** The target, as text (`≤ 1.0×`), or `''`. */
  readonly target: string;
  readonly verdict: Verdict;
  /** Why there is no figure (WARNING, skipped), or a remark. */
  readonly note?: string;
  /** What the run saw: claims, victims, bytes, rounds, spread, raw timings. */
  readonly details: Readonly<Record<string, number | string>>;
}

/**
 * A row finished later: the timed rounds are done, what is left is the probe run that counts
 * the claims (see `probe.ts`). `npm run bench` runs every bench's timed rounds first and all
 * the probes at the end, so that no probe teaches the JIT a path before another row is timed.
 */
export type LateRow = () => Promise<BenchRow>;

/** Forces a full collection if the process runs with `--expose-gc`. */
export function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

/** Whether `global.gc` is available (the bench needs `--expose-gc` for B5). */
export function gcAvailable(): boolean {
  return typeof (globalThis as { gc?: unknown }).gc === 'function';
}

/** Wall-clock milliseconds, high resolution. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * CPU milliseconds this process has used (user + system, all its threads, GC helpers
 * included). Timings are taken in CPU time: on a shared machine another process's load
 * stretches wall-clock time but not this, so it stays comparable round to round.
 */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** One macrotask turn (lets finalization callbacks and timers run). */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

let sinkValue: unknown;
/** Keeps a result observable so the JIT cannot drop the work that produced it. */
export function sink(value: unknown): void {
  sinkValue = value;
}
/** The last sunk value (read at the end so `sink` is not dead code either). */
export function sunk(): unknown {
  return sinkValue;
}

/** Runs `fn` once (after a GC, so garbage from before does not bill it); CPU ms used. */
export async function timeOnce(fn: () => unknown): Promise<number> {
  collect();
  const start = cpuMs();
  const result = fn();
  sink(result instanceof Promise ? await result : result);
  return cpuMs() - start;
}

/** How many rounds to run: full, or `--quick`. */
export interface Rounds {
  readonly warmup: number;
  readonly rounds: number;
}

/** The outcome of {@link sideBySide}. */
export interface Comparison {
  /** Median baseline time per operation, ns. */
  readonly baselineNs: number;
  /** Median subject time per operation, ns. */
  readonly subjectNs: number;
  /** Median of the per-round ratios subject / baseline. */
  readonly ratio: number;
  /** Lowest and highest per-round ratio. */
  readonly low: number;
  readonly high: number;
  /** Measured rounds. */
  readonly rounds: number;
}

/**
 * Times `baseline` and `subject` alternately (`warmup` unmeasured rounds, then `rounds`
 * measured ones; the order inside a round alternates too: A/B, B/A, …). Each function performs
 * `ops` operations per call and may return a promise (awaited inside the timing).
 */
export async function sideBySide(baseline: () => unknown, subject: () => unknown, ops: number, { warmup, rounds }: Rounds): Promise<Comparison> {
  for (let i = 0; i < warmup; i++) {
    await timeOnce(baseline);
    await timeOnce(subject);
  }
  const base: number[] = [];
  const subj: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let b: number;
    let s: number;
    if (i % 2 === 0) {
      b = await timeOnce(baseline);
      s = await timeOnce(subject);
    } else {
      s = await timeOnce(subject);
      b = await timeOnce(baseline);
    }
    base.push(b);
    subj.push(s);
    ratios.push(s / b);
  }
  return {
    baselineNs: (median(base) * 1e6) / ops,
    subjectNs: (median(subj) * 1e6) / ops,
    ratio: median(ratios),
    low: Math.min(...ratios),
    high: Math.max(...ratios),
    rounds,
  };
}

/** Formats a number with a sensible number of digits. */
export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(Math.max(0, digits - 2));
  if (abs >= 10) return value.toFixed(Math.max(0, digits - 1));
  return value.toFixed(digits);
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/**
 * A row held against an upper bound. `unexercised` is the reason the quota was not exercised
 * (then the row is a WARNING and shows no figure), or `null`.
 */
export function upperRow(
  id: string,
  what: string,
  value: number,
  unit: string,
  limit: number,
  details: Record<string, number | string>,
  unexercised: string | null = null,
): BenchRow {
  const target = `≤ ${limit}${unit === '×' ? '×' : ` ${unit}`}`;
  if (unexercised !== null) return { id, what, value: null, unit, target, verdict: 'WARNING', note: unexercised, details };
  return { id, what, value, unit, target, verdict: value <= limit ? 'ok' : 'MISS', details };
}

/** The details of a {@link Comparison}: per-op timings, rounds, spread. */
export function comparisonDetails(result: Comparison, per: string): Record<string, number | string> {
  return {
    [`baselineNsPer${per}`]: result.baselineNs,
    [`subjectNsPer${per}`]: result.subjectNs,
    rounds: result.rounds,
    spread: `${fmt(result.low)}–${fmt(result.high)}`,
  };
}

/** A row that was not measured. */
export function skippedRow(id: string, what: string, target: string, note: string): BenchRow {
  return { id, what, value: null, unit: '', target, verdict: 'skipped', note, details: {} };
}
