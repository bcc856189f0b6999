/**
 * Timing helpers shared by the benchmarks: side-by-side runs, medians, and the result rows.
 *
 * Ratios are always measured in one process, baseline and subject alternating round by round
 * (after warm-up rounds), so that JIT state, GC state and machine noise hit both alike; the
 * ratio reported is the median of the per-round ratios.
 *
 * @module
 */

/** One row of the results table (and of `bench/results.json`). */
export interface BenchRow {
  /** `B1` … `B6`. */
  readonly id: string;
  /** What was measured. */
  readonly name: string;
  /** The headline figure. */
  readonly value: number;
  /** Its unit (`×`, `ms`, `bytes`, …). */
  readonly unit: string;
  /** The target, as text (`≤ 1.5×`). */
  readonly target: string;
  /** Whether the figure meets the target. */
  readonly ok: boolean;
  /** Supporting figures (baseline and subject timings, sizes, …). */
  readonly details: Readonly<Record<string, number | string>>;
}

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

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `fn` once and returns the elapsed milliseconds (after a GC, so garbage from before does not bill it). */
export function timeOnce(fn: () => unknown): number {
  collect();
  const start = nowMs();
  sink(fn());
  return nowMs() - start;
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

/** The outcome of {@link sideBySide}. */
export interface Comparison {
  /** Median baseline time per operation, ns. */
  readonly baselineNs: number;
  /** Median subject time per operation, ns. */
  readonly subjectNs: number;
  /** Median of the per-round ratios subject / baseline. */
  readonly ratio: number;
  /** Measured rounds. */
  readonly rounds: number;
}

/**
 * Times `baseline` and `subject` alternately (`warmup` unmeasured rounds, then `rounds`
 * measured ones; the order inside a round alternates too). Each function performs `ops`
 * operations per call.
 */
export function sideBySide(
  baseline: () => unknown,
  subject: () => unknown,
  ops: number,
  { warmup = 3, rounds = 9 }: { warmup?: number; rounds?: number } = {},
): Comparison {
  for (let i = 0; i < warmup; i++) {
    sink(baseline());
    sink(subject());
  }
  const base: number[] = [];
  const subj: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let b: number;
    let s: number;
    if (i % 2 === 0) {
      b = timeOnce(baseline);
      s = timeOnce(subject);
    } else {
      s = timeOnce(subject);
      b = timeOnce(baseline);
    }
    base.push(b);
    subj.push(s);
    ratios.push(s / b);
  }
  return {
    baselineNs: (median(base) * 1e6) / ops,
    subjectNs: (median(subj) * 1e6) / ops,
    ratio: median(ratios),
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

/** The row of a side-by-side ratio with an upper target (B1, B2, B3). */
export function ratioRow(id: string, name: string, result: Comparison, target: number, ops: number, per: string): BenchRow {
  return {
    id,
    name,
    value: result.ratio,
    unit: '×',
    target: `≤ ${target}×`,
    ok: result.ratio <= target,
    details: { [`baselineNsPer${per}`]: result.baselineNs, [`subjectNsPer${per}`]: result.subjectNs, [per === 'Pair' ? 'pairs' : 'values']: ops, rounds: result.rounds },
  };
}
