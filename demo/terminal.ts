/**
 * The demo's terminal output: the live status line and the summary table.
 *
 * @module
 */
import type { FloodResult, LiveState, Sample } from './flood.js';

const MiB = 1024 * 1024;

function mib(bytes: number, digits = 1): string {
  return (bytes / MiB).toFixed(digits);
}

function bar(fraction: number, width: number): string {
  const clamped = Math.max(0, Math.min(1, fraction));
  const full = Math.round(clamped * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}

/** The live status line for one sample. */
export function statusLine(sample: Sample, live: LiveState, ceiling: number): string {
  const t = `t ${sample.t.toFixed(1).padStart(5)}s`;
  const conns = `alive ${String(sample.alive).padStart(4)} killed ${String(sample.killed).padStart(3)}`;
  const mem = `heapUsed ${mib(sample.heapUsed).padStart(7)} MiB  RSS ${mib(sample.rss).padStart(7)} MiB`;
  if (live.max === null) {
    const held = `queued ${mib(sample.held).padStart(7)} MiB (no quota) [${bar(sample.heapUsed / ceiling, 20)}] of ceiling ${mib(ceiling, 0)} MiB`;
    return `${t} ${held} | ${conns} | ${mem}`;
  }
  const pct = ((sample.held / live.max) * 100).toFixed(0).padStart(3);
  const used = `[${bar(sample.held / live.max, 20)}] used ${mib(sample.held).padStart(5)}/${mib(live.max, 0)} MiB ${pct}% pressure ${live.pressure.padEnd(6)}`;
  return `${t} ${used} | ${conns} | ${mem}`;
}

/**
 * Prints live lines: redrawn in place with `\r` on a terminal (at most every `redrawMs`),
 * otherwise one full line every `lineMs`.
 */
export function liveReporter(ceiling: number, { redrawMs = 200, lineMs = 2000 } = {}): {
  onSample: (sample: Sample, live: LiveState) => void;
  finish: () => void;
} {
  const tty = process.stdout.isTTY === true;
  let last = -Infinity;
  let drawn = false;
  return {
    onSample(sample, live) {
      const now = performance.now();
      if (now - last < (tty ? redrawMs : lineMs)) return;
      last = now;
      const line = statusLine(sample, live, ceiling);
      if (tty) {
        process.stdout.write(`\r${line}\x1b[K`);
        drawn = true;
      } else {
        process.stdout.write(`${line}\n`);
      }
    },
    finish() {
      if (drawn) process.stdout.write('\n');
    },
  };
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((part / whole) * 100).toFixed(1)} %`;
}

/** The summary rows of a run, as `[figure, value]` pairs. */
export function summaryRows(result: FloodResult, svgPath: string | null): [string, string][] {
  const o = result.options;
  const rows: [string, string][] = [];
  rows.push([
    'mode',
    result.max === null
      ? 'no quota: plain unbounded RxJS queue (Subject + concatMap(write))'
      : `quota ${mib(result.max, 0)} MiB, lowWater ${mib(result.lowWater!, 0)} MiB, one account per connection, ${o.via === 'map' ? 'memquotaMap(write)' : 'memquotaQueue + for await'}`,
  ]);
  rows.push([
    'clients',
    `${o.clients}: ${result.fast.total} fast, ${result.slow.total} slow (half paused, half reading ${(o.slowReadBytesPerSecond / 1024).toFixed(0)} KiB/s)`,
  ]);
  rows.push([
    'load',
    `nominal ${o.rate} msg/s × ${(o.messageSize / 1024).toFixed(1)} KiB per connection ≈ ${mib(result.nominalBytesPerSecond, 0)} MiB/s fan-out; ` +
      `produced ${mib(result.producedBytesPerSecond, 0)} MiB/s (${(100 * result.producerKeptUp).toFixed(0)} % of the batches owed; reclaimed connections get no more)`,
  ]);
  if (result.producerKeptUp < 0.9) {
    rows.push(['WARNING', `the producer fell behind: it made ${(100 * result.producerKeptUp).toFixed(0)} % of the message batches owed (the machine was too busy); the load was lighter than nominal`]);
  }
  rows.push(['ran', `${result.seconds.toFixed(1)} s, stopped by ${result.stoppedBy === 'ceiling' ? `the safety ceiling (heapUsed ≥ ${mib(o.ceilingBytes, 0)} MiB)` : 'duration'}`]);
  rows.push(['longest event-loop stall', `${result.maxStallMs.toFixed(0)} ms (how late the ${o.sampleMs} ms sampler ran at worst)`]);
  rows.push(['messages produced', `${result.messages.toLocaleString('en-US')} (${mib(result.queuedBytes, 0)} MiB)`]);
  rows.push([result.max === null ? 'peak queued (untracked)' : 'peak used (tracker)', `${mib(result.peakHeld)} MiB${result.max === null ? '' : ` (${(result.peakHeld / result.max).toFixed(2)} × max)`}`]);
  rows.push([
    'peak heapUsed',
    `${mib(result.peakHeapUsed)} MiB${result.max === null ? '' : ` (${(result.peakHeapUsed / result.max).toFixed(2)} × max)`}; before the flood ${mib(result.baselineHeapUsed)} MiB`,
  ]);
  if (result.peakLiveHeapUsed !== null) {
    rows.push([
      'peak live heap',
      `${mib(result.peakLiveHeapUsed)} MiB${result.max === null ? '' : ` (${(result.peakLiveHeapUsed / result.max).toFixed(2)} × max)`}, heapUsed right after a forced full GC`,
    ]);
  }
  if (result.majorGcs.length > 0) {
    const afterGc = Math.max(...result.majorGcs.map((g) => g.heapUsed));
    rows.push([
      'heapUsed after major GC',
      result.max === null
        ? `at most ${mib(afterGc)} MiB over ${result.majorGcs.length} major GCs`
        : `at most ${mib(afterGc)} MiB (${(afterGc / result.max).toFixed(2)} × max) over ${result.majorGcs.length} major GCs: the live heap; the rest of the peak is garbage V8 had not collected yet`,
    ]);
  }
  rows.push(['peak RSS', `${mib(result.peakRss)} MiB`]);
  const k = result.kernel;
  rows.push([
    'kernel socket buffers',
    `peak ${mib(k.peak)} MiB in flight (server send + client receive buffers, never in a JS queue, never counted by the tracker); ` +
      `${mib(k.perSlowConnection, 2)} MiB per slow connection` +
      (k.atFirstHeld === null ? (result.max === null ? '' : '; the tracker never held 1 MiB') : `; ${mib(k.atFirstHeld)} MiB when the tracker first held 1 MiB`) +
      (k.atFirstReclaim === null ? '' : `; ${mib(k.atFirstReclaim)} MiB when it first reclaimed`),
  ]);
  if (result.max !== null) {
    rows.push(['reclamation', `${result.reclaimRuns} runs, ${result.victims} victims, ${mib(result.bytesReclaimed)} MiB reclaimed`]);
  }
  rows.push([
    'fast clients',
    `${result.fast.survived}/${result.fast.total} survived, ${result.fast.killed} killed; read ${percent(result.fast.receivedBytes, result.fast.queuedBytes)} of what was queued for them${result.fastComplete ? ' (all caught up)' : ' (NOT all caught up within 3 s)'}`,
  ]);
  rows.push(['slow clients', `${result.slow.killed}/${result.slow.total} killed, ${result.slow.survived} survived`]);
  if (svgPath !== null) rows.push(['chart', svgPath]);
  return rows;
}

/** The summary as a two-column text table. */
export function summaryTable(rows: readonly [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  const rule = `${'─'.repeat(width + 2)}┼${'─'.repeat(60)}`;
  return [rule, ...rows.map(([k, v]) => ` ${k.padEnd(width)} │ ${v}`), rule].join('\n');
}

/** The two runs side by side: what the quota changed. */
export function comparisonRows(quota: FloodResult, baseline: FloodResult): [string, string][] {
  const both = (label: string, f: (r: FloodResult) => string): [string, string] => [label, `quota: ${f(quota)}   │   no quota: ${f(baseline)}`];
  return [
    ['', 'the two runs, side by side'],
    both('ran', (r) => `${r.seconds.toFixed(1)} s${r.stoppedBy === 'ceiling' ? ' (stopped at the ceiling)' : ''}`),
    both('load produced', (r) => `${mib(r.producedBytesPerSecond, 0)} of ${mib(r.nominalBytesPerSecond, 0)} MiB/s`),
    both('peak held in queues', (r) => `${mib(r.peakHeld)} MiB`),
    both('peak heapUsed', (r) => `${mib(r.peakHeapUsed)} MiB`),
    both('peak in kernel buffers', (r) => `${mib(r.kernel.peak)} MiB`),
    both('fast clients served', (r) => `${percent(r.fast.receivedBytes, r.fast.queuedBytes)}${r.fastComplete ? '' : ' (not caught up)'}`),
    both('slow clients reclaimed', (r) => `${r.slow.killed}/${r.slow.total}`),
  ];
}
