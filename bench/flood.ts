/**
 * B6: the demo's flood, measured. The demo (`demo/server.ts`) runs as a child process, so that
 * its heap is its own: once with the quota (raw `heapUsed`, as the demo shows it), once with
 * the quota and a full GC forced every second (the live heap, without garbage V8 has not yet
 * collected), and once without the quota, for the same duration.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FloodResult } from '../demo/flood.js';
import type { BenchRow } from './harness.js';

const TARGET = 1.25;
const MiB = 1024 * 1024;
const demo = join(dirname(fileURLToPath(import.meta.url)), '..', 'demo', 'server.ts');

type Summary = Omit<FloodResult, 'samples' | 'killTimes'>;

/** Runs the demo with `args` and returns its JSON summary. */
function runDemo(args: string[]): Promise<Summary> {
  const dir = mkdtempSync(join(tmpdir(), 'memquota-bench-'));
  const json = join(dir, 'summary.json');
  return new Promise<Summary>((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import=tsx', demo, '--quiet', '--no-svg', '--json', json, ...args], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`the demo exited with ${code} (args ${args.join(' ')})`);
        resolve(JSON.parse(readFileSync(json, 'utf8')) as Summary);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/** Runs B6 (three demo runs of `seconds` each) and returns its rows. */
export async function benchFlood(seconds = 20): Promise<BenchRow[]> {
  const duration = ['--duration', String(seconds)];
  const quota = await runDemo(duration);
  const live = await runDemo([...duration, '--live-heap', '1000']);
  const none = await runDemo([...duration, '--no-quota']);
  const max = quota.max!;
  const common = (s: Summary): Record<string, number | string> => ({
    seconds: +s.seconds.toFixed(1),
    stoppedBy: s.stoppedBy,
    peakHeldMiB: +(s.peakHeld / MiB).toFixed(1),
    peakHeapUsedMiB: +(s.peakHeapUsed / MiB).toFixed(1),
    peakRssMiB: +(s.peakRss / MiB).toFixed(1),
    baselineHeapUsedMiB: +(s.baselineHeapUsed / MiB).toFixed(1),
    fastKilled: s.fast.killed,
    slowKilled: s.slow.killed,
    fastComplete: String(s.fastComplete),
  });
  return [
    {
      id: 'B6',
      name: `flood with quota ${max / MiB} MiB: peak heapUsed / max`,
      value: quota.peakHeapUsed / max,
      unit: '× max',
      target: `≤ ${TARGET} × max`,
      ok: quota.peakHeapUsed / max <= TARGET,
      details: { ...common(quota), maxMiB: max / MiB },
    },
    {
      id: 'B6',
      name: 'same, live heap (after a forced full GC, each 1 s)',
      value: live.peakLiveHeapUsed! / max,
      unit: '× max',
      target: `≤ ${TARGET} × max`,
      ok: live.peakLiveHeapUsed! / max <= TARGET,
      details: { ...common(live), peakLiveHeapUsedMiB: +(live.peakLiveHeapUsed! / MiB).toFixed(1) },
    },
    {
      id: 'B6',
      name: 'same flood without quota: peak heapUsed / max',
      value: none.peakHeapUsed / max,
      unit: '× max',
      target: '(baseline)',
      ok: true,
      details: common(none),
    },
  ];
}
