/**
 * `npm start`: slow clients on a real server.
 *
 * A TCP fan-out server on 127.0.0.1 with N client connections in this process, some of them
 * slow, and a producer flooding every connection. With the quota (default 64 MiB), each
 * connection's queue is a participant in its own account: when the total passes `max`, the
 * connections holding the oldest data are reclaimed (their sockets destroyed) until use is
 * back under `lowWater`, and the fast clients are left alone. With `--no-quota` the same load
 * goes through a plain unbounded RxJS queue, and the run stops itself at a safety ceiling.
 *
 * Flags (after `npm start --`):
 *   --quota MiB          the quota (default 64)
 *   --no-quota           the same load through an unbounded RxJS queue
 *   --clients N          client connections (default 200)
 *   --slow-share F       share of slow clients, 0…1 (default 0.2; half paused, half trickling)
 *   --duration S         seconds of production (default 20)
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
 *   --json PATH          also write the summary (without the samples) as JSON
 *   --quiet              no live line
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_FLOOD, runFlood, type FloodOptions, type QueueKind } from './flood.js';
import { renderSvg } from './svg.js';
import { liveReporter, summaryRows, summaryTable } from './terminal.js';

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

function parse(argv: string[]): { flood: Omit<FloodOptions, 'onSample'>; svg: string | null; json: string | null; quiet: boolean } {
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
    },
    strict: true,
  });
  const quotaMiB = number(values.quota, 'quota', DEFAULT_FLOOD.quotaBytes! / MiB, { min: 1 });
  const noQuota = values['no-quota'] === true;
  const ceilingMiB = number(values.ceiling, 'ceiling', Math.min(1536, 8 * quotaMiB), { min: 16 });
  const via = (values.via ?? DEFAULT_FLOOD.via) as QueueKind;
  if (via !== 'queue' && via !== 'map') throw new Error(`--via must be 'queue' or 'map', got ${JSON.stringify(values.via)}`);
  const slowShare = number(values['slow-share'], 'slow-share', DEFAULT_FLOOD.slowShare);
  if (slowShare > 1) throw new Error('--slow-share must lie between 0 and 1');
  return {
    flood: {
      ...DEFAULT_FLOOD,
      quotaBytes: noQuota ? null : Math.round(quotaMiB * MiB),
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
    svg: values['no-svg'] ? null : (values.svg ?? join(here, 'memquota-run.svg')),
    json: values.json ?? null,
    quiet: values.quiet === true,
  };
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
  const { flood, svg, json, quiet } = args;
  const mode =
    flood.quotaBytes === null
      ? `no quota (safety ceiling ${(flood.ceilingBytes / MiB).toFixed(0)} MiB heapUsed)`
      : `quota ${(flood.quotaBytes / MiB).toFixed(0)} MiB`;
  console.log(`rxjs-memquota demo: ${flood.clients} clients (${Math.round(flood.clients * flood.slowShare)} slow), ${mode}, ${flood.durationSeconds} s`);
  const reporter = liveReporter(flood.ceilingBytes);
  const result = await runFlood({ ...flood, ...(quiet ? {} : { onSample: reporter.onSample }) });
  reporter.finish();

  const svgRelative = svg === null ? null : relative(process.cwd(), svg);
  const svgShown = svg === null ? null : svgRelative && !svgRelative.startsWith('..') ? svgRelative : svg;
  if (svg !== null) {
    const title =
      result.max === null
        ? `rxjs-memquota demo: no quota, ${flood.clients} clients (${result.slow.total} slow)`
        : `rxjs-memquota demo: quota ${(result.max / MiB).toFixed(0)} MiB, ${flood.clients} clients (${result.slow.total} slow), ${result.slow.killed + result.fast.killed} reclaimed`;
    writeFileSync(svg, renderSvg(result, title));
  }
  if (json !== null) {
    const { samples: _samples, killTimes: _killTimes, ...summary } = result;
    writeFileSync(json, JSON.stringify(summary, null, 2) + '\n');
  }
  console.log(summaryTable(summaryRows(result, svgShown)));

  // Everything is closed: the process should exit by itself. If a handle lingers, say which.
  setTimeout(() => {
    console.error('demo: handles still open after the run:', process.getActiveResourcesInfo().join(', '));
    process.exit(1);
  }, 5000).unref();
}

await main();
