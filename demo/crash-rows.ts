/**
 * The crash test's rows and how one is run: `demo/flood-child.ts` in a child process under a
 * small V8 heap (`--max-old-space-size`), its outcome read from its exit and its `RESULT`
 * line. Used by `demo/crash-test.ts` (`npm run crash-test`) and `spec/crash-test-spec.ts`.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryQuotaTracker } from '../index.js';

const childScript = join(dirname(fileURLToPath(import.meta.url)), 'flood-child.ts');

/** What a row is expected to do. */
export type Expected = 'dies' | 'survives';

/** Which library feature an expectation depends on. */
export type Needs = 'auto-fits-heap' | 'heap-guard';

/** One row of the table. */
export interface CrashRow {
  readonly name: string;
  /** `flood-child.ts` arguments besides `--seconds`. */
  readonly args: readonly string[];
  readonly expected: Expected;
  /** Features the expectation depends on (the row still runs without them; it may differ). */
  readonly needs: readonly Needs[];
}

/** The rows of the crash test: the four, and an explicit quota for comparison. */
export const CRASH_ROWS: readonly CrashRow[] = [
  { name: 'no quota', args: ['--quota', 'none'], expected: 'dies', needs: [] },
  // Not one of the four: what an explicit max that fits the heap does today.
  { name: 'explicit 64 MiB quota', args: ['--quota', String(64 * 1024 * 1024)], expected: 'survives', needs: [] },
  { name: 'default tracker', args: ['--quota', 'auto'], expected: 'survives', needs: ['auto-fits-heap'] },
  { name: 'cost ÷4, heap guard on', args: ['--quota', 'auto', '--cost-scale', '0.25'], expected: 'survives', needs: ['auto-fits-heap', 'heap-guard'] },
  { name: 'cost ÷4, heap guard off', args: ['--quota', 'auto', '--cost-scale', '0.25', '--heap-guard', 'off'], expected: 'dies', needs: [] },
];

/** The `RESULT` line's fields. */
export interface ChildResult {
  readonly alive: true;
  readonly seconds: number;
  readonly fastServedPct: number;
  readonly claims: number;
  readonly victims: number;
  readonly peakUsed: number;
  readonly peakHeapUsed: number;
  readonly producedMiB: number;
  readonly max?: number | null;
  readonly heapLimit?: number;
  readonly producedMiBps?: number;
  readonly nominalMiBps?: number;
}

/** What happened to a child. */
export interface Outcome {
  /** `'survived'`: exit 0 with a RESULT line; `'died'`: anything else. */
  readonly outcome: 'survived' | 'died';
  /** Wall-clock seconds from spawn to exit. */
  readonly wallSeconds: number;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The parsed RESULT line, if any. */
  readonly result: ChildResult | null;
  /** The child's fatal line on stderr (`FATAL ERROR: … heap out of memory`), or its last stderr line. */
  readonly fatal: string | null;
  /** Whether stderr says "heap out of memory". */
  readonly heapOutOfMemory: boolean;
  /** The `max` the child printed at its start, MiB (`null` without a tracker). */
  readonly maxMiB: number | null;
  /** The largest `heapUsed` printed in the progress lines (for children that die). */
  readonly lastHeapUsedMiB: number | null;
  /** The last progress line, and its time and volume produced (for children that die). */
  readonly lastProgress: string | null;
  readonly lastProgressSeconds: number | null;
  readonly lastProducedMiB: number | null;
}

/** Options of a run. */
export interface RunOptions {
  /** `--max-old-space-size` in MiB. */
  readonly heapMiB: number;
  /** `--seconds` of the child. */
  readonly seconds: number;
  /**
   * The volume each row must go through: the child produces past `seconds` until this many
   * MiB were produced (at most 3 × `seconds`), so a busy machine does not pass a row by
   * producing too little to fill the heap.
   */
  readonly minProducedMiB?: number;
  /** More child arguments (e.g. `--rate-mib`). */
  readonly extra?: readonly string[];
  /** Kill the child after this many ms (a hung child counts as dead, signal SIGKILL). */
  readonly timeoutMs?: number;
}

/** Spawns `flood-child.ts` with `args` and reports what happened. */
export function runChild(args: readonly string[], options: RunOptions): Promise<Outcome> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [`--max-old-space-size=${options.heapMiB}`, '--expose-gc', '--import=tsx', childScript, '--seconds', String(options.seconds), ...volume(options), ...args, ...(options.extra ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-20_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? (3 * options.seconds + 30) * 1000);
  timer.unref();
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      const lines = stdout.split('\n');
      const resultLine = lines.find((l) => l.startsWith('RESULT '));
      const result = resultLine === undefined ? null : (JSON.parse(resultLine.slice('RESULT '.length)) as ChildResult);
      const progress = lines.filter((l) => l.startsWith('t '));
      let lastHeapUsedMiB: number | null = null;
      for (const line of progress) {
        const m = /heapUsed\s+([\d.]+) MiB/.exec(line);
        if (m) lastHeapUsedMiB = Math.max(lastHeapUsedMiB ?? 0, Number(m[1]));
      }
      const errLines = stderr.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
      const fatal = errLines.find((l) => l.startsWith('FATAL ERROR')) ?? errLines.at(-1) ?? null;
      resolve({
        outcome: exitCode === 0 && result !== null ? 'survived' : 'died',
        wallSeconds: (performance.now() - started) / 1000,
        exitCode,
        signal,
        result,
        fatal,
        heapOutOfMemory: /heap out of memory/i.test(stderr),
        lastHeapUsedMiB,
        maxMiB: progressNumber(lines[0], /max ([\d.]+) MiB/),
        lastProgress: progress.at(-1) ?? null,
        lastProgressSeconds: progressNumber(progress.at(-1), /^t\s+([\d.]+) s/),
        lastProducedMiB: progressNumber(progress.at(-1), /produced\s+([\d.]+) MiB/),
      });
    });
  });
}

/** Which of the features the rows' expectations need this build of the library has. */
export async function detectFeatures(): Promise<Record<Needs, boolean>> {
  // 'auto' fits the heap: a child under a 64 MiB heap reports its default max.
  const probe = await runChild(['--quota', 'auto', '--channels', '1', '--quiet'], { heapMiB: 64, seconds: 0.05 });
  const heapLimit = probe.result?.heapLimit;
  const autoMax = probe.result?.max;
  // The heap guard: the tracker's stats count its runs (the issue asks for it).
  const tracker = MemoryQuotaTracker.create({ max: 1024 * 1024 });
  const heapGuard = Object.keys(tracker.stats).some((key) => /heap/i.test(key));
  tracker.shutdown();
  return {
    'auto-fits-heap': typeof autoMax === 'number' && typeof heapLimit === 'number' && autoMax <= heapLimit,
    'heap-guard': heapGuard,
  };
}

function progressNumber(line: string | undefined, pattern: RegExp): number | null {
  const m = line === undefined ? null : pattern.exec(line);
  return m === null ? null : Number(m[1]);
}

function volume(options: RunOptions): string[] {
  return options.minProducedMiB === undefined ? [] : ['--min-produced-mib', String(options.minProducedMiB)];
}

/** Whether an outcome is the expected one. */
export function asExpected(row: CrashRow, outcome: Outcome): boolean {
  return (row.expected === 'dies') === (outcome.outcome === 'died');
}
