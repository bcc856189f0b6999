/**
 * `npm run bench`: the figures behind the library's promises, printed as a table (id, what,
 * figure, target, verdict) and one detail line per row with what the run saw (claims,
 * victims, bytes, rounds, spread). Benchmarks print figures; they never fail on a missed
 * target. A row whose quota was not exercised (no claims, no victims where they were meant)
 * prints WARNING instead of a figure.
 *
 * Reads like its table of contents:
 * - B1, B1r, B2: the operators' value path against their RxJS twins (`throughput.ts`)
 * - B3: a claim + release pair against a field increment (`books.ts`)
 * - B4, B4b: reclamation of real streams and bare participants, event-loop blocking (`reclaim.ts`)
 * - B5: heap per idle subscription in the recommended form (`idle.ts`)
 * - B6: the flood child's heap floor under a 64 MiB quota (`flood.ts`)
 * - B7: `memquotaQueue`'s buffered path against an array-backed async queue (`queue.ts`)
 * - B8: `memoryCost` against `JSON.stringify(x).length` (`cost.ts`)
 *
 * The script gives the process a 4 GiB heap: B4 holds a million real streams (about 1.7 GiB).
 *
 * Flags (after `npm run bench --`): `--only B1,B4` runs a subset (B4b comes with B4);
 * `--quick` runs fewer rounds and smaller sizes (no 1M in B4, B6 skipped) in under 30 s;
 * `--save` writes the committed `bench/results.json` (otherwise results go to the git-ignored
 * `bench/results.local.json`); `--flood-seconds N` sets B6's run length (default 20);
 * `--flood-child PATH` runs B6 against another flood child honouring the same contract.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchClaimRelease } from './books.js';
import { benchCost } from './cost.js';
import { benchFlood } from './flood.js';
import { fmt, gcAvailable, nowMs, sunk, type BenchRow, type LateRow, type Rounds } from './harness.js';
import { benchIdle } from './idle.js';
import { benchQueue } from './queue.js';
import { benchReclaim } from './reclaim.js';
import { benchThroughput } from './throughput.js';

const here = dirname(fileURLToPath(import.meta.url));
const ALL = ['B1', 'B1r', 'B2', 'B3', 'B4', 'B4b', 'B5', 'B6', 'B7', 'B8'];

function figure(row: BenchRow): string {
  if (row.value === null) return row.verdict === 'skipped' ? '—' : 'no figure';
  return `${fmt(row.value)} ${row.unit}`;
}

function detailText(row: BenchRow): string {
  const parts = Object.entries(row.details).map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`);
  if (row.note !== undefined) parts.unshift(`${row.verdict === 'WARNING' ? 'WARNING: ' : row.verdict === 'skipped' ? 'skipped: ' : ''}${row.note}`);
  return parts.join(' ');
}

function printTable(rows: readonly BenchRow[]): void {
  const cells = rows.map((r) => [r.id, r.what, figure(r), r.target, r.verdict === 'info' ? '' : r.verdict]);
  const header = ['id', 'what', 'figure', 'target', 'verdict'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string =>
    c
      .map((v, i) => (i === 2 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
  console.log();
  for (const r of rows) console.log(`${r.id} ${r.what}: ${detailText(r)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean' },
      save: { type: 'boolean' },
      'flood-seconds': { type: 'string' },
      'flood-child': { type: 'string' },
    },
    strict: true,
  });
  let only: string[] | null = null;
  if (values.only !== undefined) {
    const asked = values.only.split(',').map((s) => s.trim());
    const unknown = asked.filter((id) => !ALL.some((known) => known.toLowerCase() === id.toLowerCase()));
    if (unknown.length > 0) throw new RangeError(`bench: --only takes ids among ${ALL.join(',')}, got ${unknown.join(',')}`);
    only = ALL.filter((known) => asked.some((id) => id.toLowerCase() === known.toLowerCase()));
    if (only.includes('B4')) only.push('B4b');
  }
  const wanted = (id: string): boolean => only === null || only.includes(id);
  const quick = values.quick === true;
  const floodSeconds = values['flood-seconds'] === undefined ? 20 : Number(values['flood-seconds']);
  if (!(floodSeconds > 0)) throw new RangeError(`bench: --flood-seconds must be a positive number, got ${values['flood-seconds']}`);
  const rounds: Rounds = quick ? { warmup: 1, rounds: 3 } : { warmup: 2, rounds: 7 };
  if (!gcAvailable()) console.warn('bench: run with --expose-gc (npm run bench does) for stable timings and B5');

  const started = nowMs();
  // Rows in table order; a LateRow is finished (probed) after every timed round has run.
  const pending: (BenchRow | LateRow)[] = [];
  const step = async (ids: string[], run: () => Promise<BenchRow | LateRow | (BenchRow | LateRow)[]>): Promise<void> => {
    if (!ids.some(wanted)) return;
    const t0 = nowMs();
    process.stdout.write(`running ${ids.filter(wanted).join(', ')}…`);
    const result = await run();
    pending.push(...(Array.isArray(result) ? result : [result]));
    process.stdout.write(` ${((nowMs() - t0) / 1000).toFixed(1)} s\n`);
  };
  await step(['B1', 'B1r', 'B2'], () => benchThroughput(rounds, quick, wanted));
  await step(['B3'], () => benchClaimRelease(rounds, quick));
  await step(['B4', 'B4b'], () => benchReclaim(quick, wanted));
  await step(['B5'], () => benchIdle(quick));
  await step(['B6'], () => benchFlood(quick, floodSeconds, values['flood-child'] === undefined ? undefined : resolve(values['flood-child'])));
  await step(['B7'], () => benchQueue(rounds, quick));
  await step(['B8'], () => benchCost(rounds, quick));
  const rows: BenchRow[] = [];
  for (const row of pending) {
    const finished = typeof row === 'function' ? await row() : row;
    if (wanted(finished.id)) rows.push(finished);
  }
  const seconds = (nowMs() - started) / 1000;
  void sunk();

  console.log();
  printTable(rows);
  const count = (v: BenchRow['verdict']): number => rows.filter((r) => r.verdict === v).length;
  console.log(
    `\n${count('ok')} ok, ${count('MISS')} MISS, ${count('WARNING')} WARNING, ${count('skipped')} skipped; ${seconds.toFixed(0)} s${quick ? ' (--quick)' : ''}`,
  );

  const file = join(here, values.save === true ? 'results.json' : 'results.local.json');
  writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        platform: `${os.platform()} ${os.arch()}`,
        cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
        quick,
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
