/**
 * `npm run crash-test`: does the quota keep a real process alive?
 *
 * Runs the demo's flood of JS values (`demo/flood-child.ts`: 100 channels, 20 % of consumers
 * stalled) in child processes under a small V8 heap (`--max-old-space-size`, 256 MiB by
 * default), five ways, and prints what happened to each as a table: no quota; an explicit
 * 64 MiB quota; the default tracker; costs under-estimated 4× with the heap guard; the same
 * with the guard off. The table says what each row is expected to do and whether it did.
 *
 * Each row runs `--seconds` (default 20) and on until it has produced 8 × the heap size of
 * messages (at most 3 × `--seconds`): the stalled fifth of that cannot fit in the heap, so a
 * busy machine producing less than nominal cannot pass a row by producing too little.
 *
 * Flags (after `npm run crash-test --`): `--seconds S` per row (default 20), `--heap MiB`
 * (default 256), `--json PATH` (also write the outcomes as JSON).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CRASH_ROWS, asExpected, detectFeatures, runChild, type CrashRow, type Outcome } from './crash-rows.js';

const MiB = 1024 * 1024;

/**
 * The flood each row must go through: 8 × the old-space size, so the stalled fifth of it
 * (1.6 × the heap) cannot fit: without protection, the process must die.
 */
function volumeMiB(heapMiB: number): number {
  return 8 * heapMiB;
}

function options(): { seconds: number; heapMiB: number; json: string | null } {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: { seconds: { type: 'string' }, heap: { type: 'string' }, json: { type: 'string' } },
  });
  const seconds = values.seconds === undefined ? 20 : Number(values.seconds);
  const heapMiB = values.heap === undefined ? 256 : Number(values.heap);
  if (!(seconds > 0 && seconds <= 600)) throw new Error('--seconds must lie in (0, 600]');
  if (!(Number.isInteger(heapMiB) && heapMiB >= 32)) throw new Error('--heap must be an integer ≥ 32 (MiB)');
  return { seconds, heapMiB, json: values.json ?? null };
}

/** How a child ended, in a few words. */
function howItEnded(o: Outcome): string {
  if (o.outcome === 'survived') return 'exit 0';
  const exit = o.signal !== null ? `signal ${o.signal}` : `exit ${o.exitCode}`;
  const what = o.heapOutOfMemory ? 'JavaScript heap out of memory' : (o.fatal ?? 'no RESULT line');
  return `${exit}: ${what}`;
}

/** The table's cells for one row. */
function cells(row: CrashRow, o: Outcome, missing: readonly string[]): string[] {
  const r = o.result;
  const expectedNote = missing.length > 0 ? ` (needs ${missing.join(', ')}: absent)` : '';
  return [
    row.name,
    row.expected + expectedNote,
    o.outcome === 'survived' ? 'survived' : `died (${howItEnded(o)})`,
    asExpected(row, o) ? 'yes' : 'NO',
    // Survivors: the run's own length; the dead: their last progress line (one a second).
    r !== null ? r.seconds.toFixed(1) : o.lastProgressSeconds !== null ? `died after ${o.lastProgressSeconds.toFixed(1)}` : `${o.wallSeconds.toFixed(1)} (wall)`,
    r !== null ? r.producedMiB.toFixed(0) : o.lastProducedMiB !== null ? `≥ ${o.lastProducedMiB.toFixed(0)}` : '-',
    r !== null ? r.fastServedPct.toFixed(1) : '-',
    r !== null ? String(r.victims) : '-',
    r !== null ? `${(r.peakHeapUsed / MiB).toFixed(0)} MiB` : o.lastHeapUsedMiB !== null ? `≥ ${o.lastHeapUsedMiB.toFixed(0)} MiB (last printed)` : '-',
    o.maxMiB !== null ? `${o.maxMiB.toFixed(0)} MiB` : '-',
  ];
}

/** A Markdown table (what the README shows). */
function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cols: readonly string[]): string => `| ${cols.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const HEADER = ['row', 'expected', 'outcome', 'as expected?', 'seconds', 'MiB produced', 'fast served %', 'victims', 'peak heapUsed', 'max'];

async function main(): Promise<void> {
  let opts: ReturnType<typeof options>;
  try {
    opts = options();
  } catch (err) {
    console.error(`crash-test: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 2;
    return;
  }
  const features = await detectFeatures();
  console.log(
    `crash-test: the flood in a child under --max-old-space-size=${opts.heapMiB}, ${opts.seconds} s per row ` +
      `(longer if needed to produce ${volumeMiB(opts.heapMiB)} MiB, at most ${3 * opts.seconds} s); ` +
      `this build: 'auto' fits the heap: ${features['auto-fits-heap'] ? 'yes' : 'no'}, heap guard: ${features['heap-guard'] ? 'yes' : 'no'}`,
  );
  const rows: string[][] = [];
  const outcomes: { row: CrashRow; outcome: Outcome; missing: string[] }[] = [];
  for (const row of CRASH_ROWS) {
    process.stdout.write(`  ${row.name} (${row.args.join(' ')}) … `);
    const outcome = await runChild(row.args, { heapMiB: opts.heapMiB, seconds: opts.seconds, minProducedMiB: volumeMiB(opts.heapMiB) });
    const missing = row.needs.filter((n) => !features[n]);
    console.log(`${outcome.outcome} after ${outcome.wallSeconds.toFixed(1)} s (${howItEnded(outcome)})`);
    outcomes.push({ row, outcome, missing });
    rows.push(cells(row, outcome, missing));
  }
  console.log('');
  console.log(markdownTable(HEADER, rows));
  const unexpected = outcomes.filter((o) => !asExpected(o.row, o.outcome));
  console.log('');
  if (unexpected.length === 0) console.log('crash-test: every row did what it was expected to do.');
  else {
    for (const u of unexpected) {
      const why = u.missing.length > 0 ? ` This build lacks ${u.missing.join(' and ')}, which the expectation needs.` : '';
      console.log(`crash-test: "${u.row.name}" was expected to ${u.row.expected === 'dies' ? 'die' : 'survive'} and ${u.outcome.outcome}.${why}`);
    }
  }
  if (opts.json !== null) writeFileSync(opts.json, JSON.stringify({ heapMiB: opts.heapMiB, seconds: opts.seconds, features, outcomes }, null, 2) + '\n');
}

await main();
