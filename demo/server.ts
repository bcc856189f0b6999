/**
 * `npm start`: slow clients on a real server, with the quota and without, back to back.
 *
 * A TCP fan-out server on 127.0.0.1 with N client connections in this process, some of them
 * slow, and a producer flooding every connection. First with the quota (default 64 MiB): each
 * connection's queue is a participant in its own account; when the total passes `max`, the
 * connections holding the oldest data are reclaimed (their sockets destroyed) until use is
 * back under `lowWater`, and the fast clients are left alone. Then the no-quota baseline: the
 * same load through a plain unbounded RxJS queue, stopped at a safety ceiling (20 s, then 12 to
 * 16 s until it has produced the same volume: about 40 s in all). Both runs are
 * drawn on one chart. Each run says the load it really produced next to the nominal one (and
 * warns when the producer fell behind), and how much the kernel's socket buffers absorbed
 * outside any JS queue, where no tracker can see it.
 *
 * Flags (after `npm start --`):
 *   --runs both|quota|baseline   which runs (default both; `--no-quota` = baseline; with
 *                        `--json` and no `--runs`, the quota run only: the bench's mode)
 *   --quota MiB          the quota (default 64)
 *   --no-quota           only the baseline
 *   --clients N          client connections (default 200)
 *   --slow-share F       share of slow clients, 0…1 (default 0.2; half paused, half trickling)
 *   --duration S         seconds of production per run (default 20; the baseline after the
 *                        quota run: 12 to 16, until it has produced the quota run's volume)
 *   --rate N             messages per second per connection (default 50)
 *   --size BYTES         payload characters per message (default 16384)
 *   --slow-read KiB      what a trickling client reads per second (default 32)
 *   --ceiling MiB        safety ceiling on heapUsed, with or without quota (default 8 × quota,
 *                        at most 1536)
 *   --live-heap MS       force a full GC every MS ms and record the live heap (for the bench;
 *                        it changes the raw heapUsed curve)
 *   --via queue|map      memquotaQueue + for await (default) or memquotaMap(write)
 *   --svg PATH           where to write the chart (default demo/memquota-run.svg)
 *   --no-svg             write no chart
 *   --json PATH          also write the summary (without the samples) as JSON: one run's
 *                        summary, or `{ "runs": [quota, baseline] }` for two
 *   --quiet              no live line
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_FLOOD, runFlood, type FloodOptions, type FloodResult, type QueueKind } from './flood.js';
import { renderSvg } from './svg.js';
import { comparisonRows, liveReporter, summaryRows, summaryTable } from './terminal.js';

const MiB = 1024 * 1024;
const here = dirname(fileURLToPath(import.meta.url));

function number(value: string | undefined, name: string, fallback: number, { min = 0, integer = false } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}

type Runs = 'both' | 'quota' | 'baseline';

/**
 * Two runs back to back within about 40 s: the quota run keeps the default 20 s (the slow
 * connections' kernel buffers must fill before any queue holds data); the baseline runs at
 * least 12 s and on until it has produced as much as the quota run (the ceiling may stop it
 * first), at most 16 s.
 */
const BASELINE_AFTER_QUOTA_SECONDS = 12;
const BASELINE_MAX_SECONDS = 16;

function parse(argv: string[]): { flood: Omit<FloodOptions, 'onSample'>; runs: Runs; baselineSeconds: number; svg: string | null; json: string | null; quiet: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      quota: { type: 'string' },
      'no-quota': { type: 'boolean', default: false },
      clients: { type: 'string' },
      'slow-share': { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      size: { type: 'string' },
      'slow-read': { type: 'string' },
      ceiling: { type: 'string' },
      via: { type: 'string' },
      svg: { type: 'string' },
      'no-svg': { type: 'boolean', default: false },
      json: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      'live-heap': { type: 'string' },
      runs: { type: 'string' },
    },
    strict: true,
  });
  const quotaMiB = number(values.quota, 'quota', DEFAULT_FLOOD.quotaBytes! / MiB, { min: 1 });
  const noQuota = values['no-quota'] === true;
  const ceilingMiB = number(values.ceiling, 'ceiling', Math.min(1536, 8 * quotaMiB), { min: 16 });
  const via = (values.via ?? DEFAULT_FLOOD.via) as QueueKind;
  if (via !== 'queue' && via !== 'map') throw new Error(`--via must be 'queue' or 'map', got ${JSON.stringify(values.via)}`);
  if (values.runs !== undefined && values.runs !== 'both' && values.runs !== 'quota' && values.runs !== 'baseline') {
    throw new Error(`--runs must be 'both', 'quota' or 'baseline', got ${JSON.stringify(values.runs)}`);
  }
  if (noQuota && values.runs !== undefined && values.runs !== 'baseline') throw new Error('--no-quota runs the baseline only; it contradicts --runs ' + values.runs);
  const runs: Runs = noQuota ? 'baseline' : ((values.runs as Runs | undefined) ?? (values.json !== undefined ? 'quota' : 'both'));
  const slowShare = number(values['slow-share'], 'slow-share', DEFAULT_FLOOD.slowShare);
  if (slowShare > 1) throw new Error('--slow-share must lie between 0 and 1');
  return {
    flood: {
      ...DEFAULT_FLOOD,
      quotaBytes: runs === 'baseline' ? null : Math.round(quotaMiB * MiB),
      clients: number(values.clients, 'clients', DEFAULT_FLOOD.clients, { min: 1, integer: true }),
      slowShare,
      durationSeconds: number(values.duration, 'duration', DEFAULT_FLOOD.durationSeconds, { min: 0.5 }),
      rate: number(values.rate, 'rate', DEFAULT_FLOOD.rate, { min: 1 }),
      messageSize: number(values.size, 'size', DEFAULT_FLOOD.messageSize, { min: 1, integer: true }),
      slowReadBytesPerSecond: number(values['slow-read'], 'slow-read', DEFAULT_FLOOD.slowReadBytesPerSecond / 1024, { min: 1 }) * 1024,
      ceilingBytes: Math.round(ceilingMiB * MiB),
      via,
      ...(values['live-heap'] === undefined ? {} : { liveHeapEveryMs: number(values['live-heap'], 'live-heap', 1000, { min: 100 }) }),
    },
    runs,
    baselineSeconds: values.duration === undefined && runs === 'both' ? BASELINE_AFTER_QUOTA_SECONDS : number(values.duration, 'duration', DEFAULT_FLOOD.durationSeconds, { min: 0.5 }),
    svg: values['no-svg'] ? null : (values.svg ?? join(here, 'memquota-run.svg')),
    json: values.json ?? null,
    quiet: values.quiet === true,
  };
}

/** Runs one flood with the live line, then prints its summary. */
async function runOne(flood: Omit<FloodOptions, 'onSample'>, quiet: boolean): Promise<FloodResult> {
  const mode =
    flood.quotaBytes === null
      ? `no quota (safety ceiling ${(flood.ceilingBytes / MiB).toFixed(0)} MiB heapUsed)`
      : `quota ${(flood.quotaBytes / MiB).toFixed(0)} MiB`;
  console.log(`rxjs-memquota demo: ${flood.clients} clients (${Math.round(flood.clients * flood.slowShare)} slow), ${mode}, ${flood.durationSeconds} s`);
  const reporter = liveReporter(flood.ceilingBytes);
  const result = await runFlood({ ...flood, ...(quiet ? {} : { onSample: reporter.onSample }) });
  reporter.finish();
  console.log(summaryTable(summaryRows(result, null)));
  if (result.producerKeptUp < 0.9) {
    console.log(`WARNING: the producer fell behind (${(100 * result.producerKeptUp).toFixed(0)} % of the nominal batches): the machine was busy, the load lighter than nominal.`);
  }
  return result;
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 2;
    return;
  }
  const { flood, runs, baselineSeconds, svg, json, quiet } = args;
  const results: FloodResult[] = [];
  if (runs !== 'baseline') results.push(await runOne(flood, quiet));
  if (runs !== 'quota') {
    if (results.length > 0) console.log('');
    // After the quota run: at least BASELINE_AFTER_QUOTA_SECONDS, and on until the same volume
    // was produced (a busy machine may produce less in the second run), at most the quota run's length.
    const after = results[0];
    const sameVolume = after === undefined ? {} : { minProducedBytes: after.queuedBytes, maxDurationSeconds: Math.max(baselineSeconds, BASELINE_MAX_SECONDS) };
    results.push(await runOne({ ...flood, quotaBytes: null, durationSeconds: baselineSeconds, ...sameVolume }, quiet));
  }
  if (results.length === 2) console.log('\n' + summaryTable(comparisonRows(results[0]!, results[1]!)));

  const svgRelative = svg === null ? null : relative(process.cwd(), svg);
  const svgShown = svg === null ? null : svgRelative && !svgRelative.startsWith('..') ? svgRelative : svg;
  if (svg !== null) {
    const quota = results.find((r) => r.max !== null);
    const title =
      `rxjs-memquota demo: ${flood.clients} clients (${Math.round(flood.clients * flood.slowShare)} slow)` +
      (quota ? `, quota ${(quota.max! / MiB).toFixed(0)} MiB (solid), ${quota.killTimes.length} reclaimed` : '') +
      (results.some((r) => r.max === null) ? `${quota ? '; ' : ', '}no quota (dashed)` : '');
    writeFileSync(svg, renderSvg(results, title));
    console.log(`chart: ${svgShown}`);
  }
  if (json !== null) {
    const summaries = results.map(({ samples: _samples, killTimes: _killTimes, ...summary }) => summary);
    writeFileSync(json, JSON.stringify(summaries.length === 1 ? summaries[0] : { runs: summaries }, null, 2) + '\n');
  }

  // Everything is closed: the process should exit by itself. If a handle lingers, say which.
  setTimeout(() => {
    console.error('demo: handles still open after the run:', process.getActiveResourcesInfo().join(', '));
    process.exit(1);
  }, 5000).unref();
}

await main();
