/**
 * The demo's chart as a hand-written SVG: the quota run (solid lines) and the no-quota
 * baseline (dashed) on the same axes: held bytes (`tracker.used`, or the untracked queues'
 * total), `heapUsed`, and the bytes in the kernel's socket buffers, over time; the `max` and
 * `lowWater` lines, the baseline's safety ceiling, `heapUsed` just after each major GC, and a
 * tick for every reclaimed connection.
 *
 * @module
 */
import type { FloodResult } from './flood.js';

const MiB = 1024 * 1024;
const WIDTH = 960;
const LEGEND_Y = 42;
const LEGEND_STEP = 190;
const HEIGHT = 500;
const PAD = { left: 70, right: 150, top: 96, bottom: 55 };

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** A "nice" step for about `count` ticks over `range`. */
function niceStep(range: number, count: number): number {
  const raw = range / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * magnitude >= raw) return m * magnitude;
  return 10 * magnitude;
}

/** Renders one chart of one or more runs (the first solid, the others dashed). */
export function renderSvg(runs: readonly FloodResult[], title: string): string {
  const all = runs.flatMap((r) => r.samples);
  const tMax = Math.max(1, ...all.map((s) => s.t));
  const yTop = Math.max(...runs.map((r) => Math.max(r.max ?? 0, r.max === null ? r.options.ceilingBytes : 0)), ...all.map((s) => Math.max(s.held, s.heapUsed, s.kernel))) * 1.08;
  const yMaxMiB = Math.max(1, yTop / MiB);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t: number): number => PAD.left + (Math.min(t, tMax) / tMax) * plotW;
  const y = (bytes: number): number => PAD.top + plotH - (bytes / MiB / yMaxMiB) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${PAD.left}" y="24" font-size="16" font-weight="bold">${escapeXml(title)}</text>`,
  );

  // Grid and axes.
  const yStep = niceStep(yMaxMiB, 8);
  for (let v = 0; v <= yMaxMiB + 1e-9; v += yStep) {
    const yy = y(v * MiB).toFixed(1);
    out.push(`<line x1="${PAD.left}" y1="${yy}" x2="${PAD.left + plotW}" y2="${yy}" stroke="#eee"/>`);
    out.push(`<text x="${PAD.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#555">${+v.toFixed(1)}</text>`);
  }
  const tStep = niceStep(tMax, 10);
  for (let t = 0; t <= tMax + 1e-9; t += tStep) {
    const xx = x(t).toFixed(1);
    out.push(`<line x1="${xx}" y1="${PAD.top}" x2="${xx}" y2="${PAD.top + plotH}" stroke="#f3f3f3"/>`);
    out.push(`<text x="${xx}" y="${PAD.top + plotH + 16}" text-anchor="middle" fill="#555">${+t.toFixed(1)}</text>`);
  }
  out.push(
    `<rect x="${PAD.left}" y="${PAD.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    `<text x="${PAD.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle" fill="#333">time since the producer started (s)</text>`,
    `<text transform="translate(18 ${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">MiB</text>`,
  );

  // Reference lines.
  const hline = (bytes: number, color: string, label: string): void => {
    const yy = y(bytes).toFixed(1);
    out.push(`<line x1="${PAD.left}" y1="${yy}" x2="${PAD.left + plotW}" y2="${yy}" stroke="${color}" stroke-dasharray="2 3" stroke-width="1.2"/>`);
    out.push(`<text x="${PAD.left + plotW + 6}" y="${yy}" dominant-baseline="middle" fill="${color}">${escapeXml(label)}</text>`);
  };
  for (const r of runs) {
    if (r.max !== null && r.lowWater !== null) {
      hline(r.max, '#c62828', `max ${(r.max / MiB).toFixed(0)} MiB`);
      hline(r.lowWater, '#2e7d32', `lowWater ${(r.lowWater / MiB).toFixed(0)} MiB`);
    } else {
      hline(r.options.ceilingBytes, '#6a1b9a', `ceiling ${(r.options.ceilingBytes / MiB).toFixed(0)} MiB`);
    }
  }

  // Series: one colour per measure, one line style per run.
  const measures: [string, string, (s: FloodResult['samples'][number]) => number][] = [
    ['held in the queues (used / untracked)', '#1565c0', (s) => s.held],
    ['heapUsed', '#ef6c00', (s) => s.heapUsed],
    ['in kernel socket buffers', '#00897b', (s) => s.kernel],
  ];
  const dash = (i: number): string => (i === 0 ? '' : ' stroke-dasharray="7 4"');
  runs.forEach((r, i) => {
    for (const [, color, pick] of measures) {
      const points = r.samples.map((s) => `${x(s.t).toFixed(1)},${y(pick(s)).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${points}" fill="none" stroke="${color}" stroke-width="${i === 0 ? 2.2 : 1.6}"${dash(i)} stroke-linejoin="round"/>`);
    }
    // heapUsed right after each major GC: the live heap, without the garbage between GCs.
    for (const point of r.majorGcs) {
      if (point.t > tMax) continue;
      out.push(`<circle cx="${x(point.t).toFixed(1)}" cy="${y(point.heapUsed).toFixed(1)}" r="3" fill="${i === 0 ? '#fff' : '#ef6c00'}" stroke="#ef6c00" stroke-width="1.3"/>`);
    }
  });
  measures.forEach(([label, color], i) => {
    const lx = PAD.left + i * LEGEND_STEP * 1.3;
    out.push(`<line x1="${lx}" y1="${LEGEND_Y}" x2="${lx + 22}" y2="${LEGEND_Y}" stroke="${color}" stroke-width="2.2"/>`);
    out.push(`<text x="${lx + 28}" y="${LEGEND_Y}" dominant-baseline="middle">${escapeXml(label)}</text>`);
  });
  runs.forEach((r, i) => {
    const lx = PAD.left + i * LEGEND_STEP * 1.6;
    const label = r.max === null ? `no quota (${r.seconds.toFixed(0)} s${r.stoppedBy === 'ceiling' ? ', stopped at the ceiling' : ''})` : `quota ${(r.max / MiB).toFixed(0)} MiB`;
    out.push(`<line x1="${lx}" y1="${LEGEND_Y + 20}" x2="${lx + 22}" y2="${LEGEND_Y + 20}" stroke="#333" stroke-width="1.8"${dash(i)}/>`);
    out.push(`<circle cx="${lx + 34}" cy="${LEGEND_Y + 20}" r="3" fill="${i === 0 ? '#fff' : '#ef6c00'}" stroke="#ef6c00" stroke-width="1.3"/>`);
    out.push(`<text x="${lx + 42}" y="${LEGEND_Y + 20}" dominant-baseline="middle">${escapeXml(label)} (° = heapUsed after a major GC)</text>`);
  });

  // A tick per reclaimed connection.
  const kills = runs.flatMap((r) => r.killTimes);
  if (kills.length > 0) {
    const base = PAD.top + plotH;
    for (const t of kills) {
      const xx = x(t).toFixed(1);
      out.push(`<line x1="${xx}" y1="${base}" x2="${xx}" y2="${base - 8}" stroke="#c62828" stroke-width="1"/>`);
    }
    out.push(`<text x="${PAD.left + plotW - 6}" y="${PAD.top + 16}" text-anchor="end" fill="#c62828">ticks on the time axis: connection reclaimed (${kills.length})</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
