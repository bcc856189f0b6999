/**
 * B6: how much heap the flood needs under a 64 MiB quota. The flood child
 * (`demo/flood-child.ts`, also the crash test's) floods JS values into channels, a share of
 * them stalled for good, for S seconds, in a process of its own:
 *
 * ```text
 * node --max-old-space-size=N --expose-gc --import=tsx demo/flood-child.ts --seconds S --quota <bytes>|none
 * ```
 *
 * It prints one `RESULT {json}` line (`alive, seconds, fastServedPct, claims, victims,
 * peakUsed, peakHeapUsed, producedMiB`) and exits 0 when it survived; dying of the heap shows as
 * a non-zero exit or a signal and no RESULT line.
 *
 * The figure is the smallest `--max-old-space-size` at which the child stays alive for S
 * seconds with `--quota 67108864`, as a multiple of that `max`, found by bisection (one child
 * per probe: 3× first, then halving the interval between the largest size that died, 1× if
 * none was seen, and the smallest that lived). The row checks that the tracker really held
 * bytes in the run that counts (claims and victims in its RESULT), else WARNING. A second row
 * runs the same flood with `--quota none` at 8× `max`: it must die, or the flood is too weak
 * to show that the quota matters.
 *
 * `--quick` skips B6 (each probe is a child of S seconds).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, nowMs, skippedRow, type BenchRow } from './harness.js';
import type { ChildResult } from '../demo/crash-rows.js';

const MiB = 1024 * 1024;
const QUOTA = 64 * MiB;
const TARGET_MULTIPLE = 3;
const NO_QUOTA_MULTIPLE = 8;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_CHILD = join(root, 'demo', 'flood-child.ts');

/** The child's `RESULT` line: the contract `demo/crash-rows.ts` reads too. */
type FloodResult = ChildResult;

/** One child run. */
interface Probe {
  readonly multiple: number;
  readonly alive: boolean;
  readonly result: FloodResult | null;
  /** How it ended: `exit 0`, `exit 134`, `SIGKILL`, `timeout`, plus `(heap OOM)` when stderr says so. */
  readonly ended: string;
  readonly wallSeconds: number;
}

/** Runs the child once with `--max-old-space-size` = `multiple` × 64 MiB. */
function probe(child: string, multiple: number, quota: string, seconds: number): Promise<Probe> {
  const heapMiB = Math.round(multiple * (QUOTA / MiB));
  const args = [`--max-old-space-size=${heapMiB}`, '--expose-gc', '--import=tsx', child, '--seconds', String(seconds), '--quota', quota];
  const started = nowMs();
  return new Promise<Probe>((resolve, reject) => {
    const proc = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    let timedOut = false;
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      // Keep only what a RESULT line may still be part of.
      const cut = stdout.lastIndexOf('\n', stdout.length - 2);
      if (cut > 65536) stdout = stdout.slice(cut);
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4096);
    });
    // A child that hangs is killed (it is ours): seconds for the run plus a generous start-up.
    const guard = setTimeout(
      () => {
        timedOut = true;
        proc.kill('SIGKILL');
      },
      (seconds + 60) * 1000,
    );
    proc.once('error', (err) => {
      clearTimeout(guard);
      reject(err);
    });
    proc.once('close', (code, signal) => {
      clearTimeout(guard);
      const line = stdout
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('RESULT '));
      let result: FloodResult | null = null;
      if (line !== undefined) {
        try {
          result = JSON.parse(line.slice('RESULT '.length)) as FloodResult;
        } catch {
          result = null;
        }
      }
      const oom = /heap out of memory|Allocation failed/i.test(stderrTail) ? ' (heap OOM)' : '';
      const ended = timedOut ? 'timeout' : signal !== null ? `${signal}${oom}` : `exit ${code}${oom}`;
      resolve({ multiple, alive: code === 0 && result?.alive === true, result, ended, wallSeconds: (nowMs() - started) / 1000 });
    });
  });
}

function describe(probes: readonly Probe[]): string {
  return probes.map((p) => `${p.multiple}×:${p.alive ? 'alive' : 'died'}(${p.ended},${fmt(p.wallSeconds, 1)}s)`).join(' ');
}

function resultDetails(r: FloodResult | null): Record<string, number | string> {
  if (r === null) return {};
  return {
    claims: r.claims,
    victims: r.victims,
    peakUsedMiB: +(r.peakUsed / MiB).toFixed(1),
    peakHeapUsedMiB: +(r.peakHeapUsed / MiB).toFixed(1),
    fastServedPct: +r.fastServedPct.toFixed(1),
    producedMiB: +r.producedMiB.toFixed(0),
    seconds: r.seconds,
  };
}

/** Runs B6 and returns its rows. */
export async function benchFlood(quick: boolean, seconds: number, child = DEFAULT_CHILD): Promise<BenchRow[]> {
  const what = `flood, --quota 64 MiB: smallest --max-old-space-size alive ${seconds} s, × max`;
  const whatNone = `same flood, --quota none, at ${NO_QUOTA_MULTIPLE}× max: dies`;
  if (!existsSync(child)) {
    const note = `${relative(root, child)} missing`;
    return [skippedRow('B6', what, `≤ ${TARGET_MULTIPLE}×`, note), skippedRow('B6', whatNone, 'dies', note)];
  }
  if (quick) {
    const note = `--quick (each probe is a ${seconds} s child process); run without --quick`;
    return [skippedRow('B6', what, `≤ ${TARGET_MULTIPLE}×`, note), skippedRow('B6', whatNone, 'dies', note)];
  }

  // Bisection over multiples of max, to a quarter of max, in at most 3 probes (each up to S s).
  const probes: Probe[] = [];
  const budget = 3;
  let lo = 1; // assumed to die (not probed): the heap must at least hold the quota
  let hi: number | null = null;
  let next: number | null = TARGET_MULTIPLE;
  while (next !== null && probes.length < budget) {
    const p = await probe(child, next, String(QUOTA), seconds);
    probes.push(p);
    if (p.alive) hi = next;
    else lo = next;
    if (hi === null) next = lo < NO_QUOTA_MULTIPLE ? NO_QUOTA_MULTIPLE : null;
    else {
      const mid: number = Math.round(((lo + hi) / 2) * 4) / 4;
      next = mid > lo && mid < hi ? mid : null;
    }
  }
  const best = hi === null ? null : probes.find((p) => p.multiple === hi)!;
  const details: Record<string, number | string> = { maxMiB: QUOTA / MiB, probes: describe(probes), ...resultDetails(best?.result ?? null) };
  let row: BenchRow;
  const target = `≤ ${TARGET_MULTIPLE}×`;
  if (best === null) {
    row = { id: 'B6', what, value: null, unit: '×', target, verdict: 'MISS', note: `died at every probed size up to ${lo}× max`, details };
  } else if (!(best.result!.claims > 0) || !(best.result!.victims > 0)) {
    row = {
      id: 'B6',
      what,
      value: null,
      unit: '×',
      target,
      verdict: 'WARNING',
      note: `the quota was not exercised: RESULT says claims=${best.result!.claims} victims=${best.result!.victims}`,
      details,
    };
  } else {
    row = { id: 'B6', what, value: hi, unit: '×', target, verdict: hi! <= TARGET_MULTIPLE ? 'ok' : 'MISS', details };
  }

  const none = await probe(child, NO_QUOTA_MULTIPLE, 'none', seconds);
  const noneRow: BenchRow = {
    id: 'B6',
    what: whatNone,
    value: none.alive ? null : none.wallSeconds,
    unit: 's to die',
    target: 'dies',
    verdict: none.alive ? 'MISS' : 'ok',
    ...(none.alive ? { note: `survived ${seconds} s at ${NO_QUOTA_MULTIPLE}× max: the flood is too weak to show the quota matters` } : {}),
    details: { heapMiB: NO_QUOTA_MULTIPLE * (QUOTA / MiB), ended: none.ended, ...resultDetails(none.result) },
  };
  return [row, noneRow];
}
