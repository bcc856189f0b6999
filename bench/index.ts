/**
 * `npm run bench`: the figures behind the library's promises, printed as a table and written
 * to `bench/results.json`. Benchmarks print figures; they never fail on a missed target.
 *
 * - B1 `memquota()` (no scheduler) vs `map(x => x)`, 1M values
 * - B2 `memquotaMap(x => of(x))` vs `concatMap(x => of(x))`, 1M values
 * - B3 a `claim` + `release` pair vs a bare `Map` lookup plus counter update
 * - B4 reclamation from crossing `max` to `lowWater` with 1k, 10k, 100k participants
 * - B5 heap bytes per idle `memquota` queue
 * - B6 the demo's flood: peak `heapUsed` with and without the quota, relative to `max`
 *
 * Flags (after `npm run bench --`): `--only B1,B4` runs a subset; `--flood-seconds N` sets
 * the length of each B6 demo run (default 20, the demo's default).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchClaimRelease } from './books.js';
import { benchFlood } from './flood.js';
import { fmt, gcAvailable, nowMs, sunk, type BenchRow } from './harness.js';
import { benchIdleQueues } from './idle.js';
import { benchReclaim } from './reclaim.js';
import { benchThroughput } from './throughput.js';

const here = dirname(fileURLToPath(import.meta.url));

function verdict(row: BenchRow): string {
  if (row.target === '' || row.target === '(baseline)') return '';
  return row.ok ? 'ok' : 'MISS';
}

function detailText(details: BenchRow['details']): string {
  return Object.entries(details)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`)
    .join(' ');
}

function printTable(rows: readonly BenchRow[]): void {
  const cells = rows.map((r) => [r.id, r.name, `${fmt(r.value)} ${r.unit}`, r.target, verdict(r)]);
  const header = ['id', 'benchmark', 'figure', 'target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => c.map((v, i) => (i === 2 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
  console.log();
  for (const r of rows) console.log(`${r.id} ${r.name}: ${detailText(r.details)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { only: { type: 'string' }, 'flood-seconds': { type: 'string' } },
    strict: true,
  });
  const only = values.only === undefined ? null : new Set(values.only.toUpperCase().split(','));
  const wanted = (id: string): boolean => only === null || only.has(id);
  const floodSeconds = values['flood-seconds'] === undefined ? 20 : Number(values['flood-seconds']);
  if (!gcAvailable()) console.warn('bench: run with --expose-gc (npm run bench does) for stable timings and B5');

  const started = nowMs();
  const rows: BenchRow[] = [];
  const step = async (ids: string[], run: () => BenchRow | BenchRow[] | Promise<BenchRow | BenchRow[]>): Promise<void> => {
    if (!ids.some(wanted)) return;
    const t0 = nowMs();
    process.stdout.write(`running ${ids.join(', ')}…`);
    const result = await run();
    const list = Array.isArray(result) ? result : [result];
    rows.push(...list.filter((r) => wanted(r.id)));
    process.stdout.write(` ${((nowMs() - t0) / 1000).toFixed(1)} s\n`);
  };
  await step(['B1', 'B2'], benchThroughput);
  await step(['B3'], benchClaimRelease);
  await step(['B4'], benchReclaim);
  await step(['B5'], benchIdleQueues);
  await step(['B6'], () => benchFlood(floodSeconds));
  const seconds = (nowMs() - started) / 1000;
  void sunk();

  console.log();
  printTable(rows);
  console.log(`\n${rows.filter((r) => verdict(r) === 'MISS').length} of ${rows.filter((r) => verdict(r) !== '').length} targets missed; ${seconds.toFixed(0)} s`);

  const file = join(here, 'results.json');
  writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        platform: `${os.platform()} ${os.arch()}`,
        cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
        seconds: +seconds.toFixed(1),
        rows,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`results written to ${file}`);
}

await main();
