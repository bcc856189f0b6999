/**
 * The run's chart as a hand-written SVG: held bytes (`tracker.used`, or the untracked queues'
 * total), `heapUsed` and RSS over time, with the `max` and `lowWater` lines (or the safety
 * ceiling without a quota) and a tick for every reclaimed connection.
 *
 * @module
 */
import type { FloodResult } from './flood.js';

const MiB = 1024 * 1024;
const WIDTH = 960;
const LEGEND_Y = 42;
const LEGEND_STEP = 170;
const HEIGHT = 480;
const PAD = { left: 70, right: 150, top: 76, bottom: 55 };

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

/** Renders the chart of a run. */
export function renderSvg(result: FloodResult, title: string): string {
  const samples = result.samples;
  const tMax = Math.max(1, ...samples.map((s) => s.t));
  const yTop =
    Math.max(
      result.max ?? 0,
      result.max === null ? result.options.ceilingBytes : 0,
      ...samples.map((s) => Math.max(s.held, s.heapUsed, s.rss)),
    ) * 1.08;
  const yMaxMiB = Math.max(1, yTop / MiB);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t: number): number => PAD.left + (t / tMax) * plotW;
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
    `<text x="${PAD.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle" fill="#333">time (s)</text>`,
    `<text transform="translate(18 ${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">MiB</text>`,
  );

  // Reference lines.
  const hline = (bytes: number, color: string, label: string): void => {
    const yy = y(bytes).toFixed(1);
    out.push(`<line x1="${PAD.left}" y1="${yy}" x2="${PAD.left + plotW}" y2="${yy}" stroke="${color}" stroke-dasharray="6 4" stroke-width="1.5"/>`);
    out.push(`<text x="${PAD.left + plotW + 6}" y="${yy}" dominant-baseline="middle" fill="${color}">${escapeXml(label)}</text>`);
  };
  if (result.max !== null && result.lowWater !== null) {
    hline(result.max, '#c62828', `max ${(result.max / MiB).toFixed(0)} MiB`);
    hline(result.lowWater, '#2e7d32', `lowWater ${(result.lowWater / MiB).toFixed(0)} MiB`);
  } else {
    hline(result.options.ceilingBytes, '#6a1b9a', `safety ceiling ${(result.options.ceilingBytes / MiB).toFixed(0)} MiB`);
  }

  // Series.
  const series: [string, string, (s: (typeof samples)[number]) => number][] = [
    [result.max === null ? 'queued (untracked)' : 'used (tracker)', '#1565c0', (s) => s.held],
    ['heapUsed', '#ef6c00', (s) => s.heapUsed],
    ['RSS', '#757575', (s) => s.rss],
  ];
  series.forEach(([label, color, pick], i) => {
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(pick(s)).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${points}" fill="none" stroke="${color}" stroke-width="${i === 0 ? 2.2 : 1.6}" stroke-linejoin="round"/>`);
    const lx = PAD.left + i * LEGEND_STEP;
    out.push(`<line x1="${lx}" y1="${LEGEND_Y}" x2="${lx + 22}" y2="${LEGEND_Y}" stroke="${color}" stroke-width="2.2"/>`);
    out.push(`<text x="${lx + 28}" y="${LEGEND_Y}" dominant-baseline="middle">${escapeXml(label)}</text>`);
  });

  // heapUsed right after each major GC: the live heap, without the garbage between GCs.
  const gcColor = '#ef6c00';
  for (const point of result.majorGcs) {
    if (point.t > tMax) continue;
    out.push(`<circle cx="${x(point.t).toFixed(1)}" cy="${y(point.heapUsed).toFixed(1)}" r="3.5" fill="#fff" stroke="${gcColor}" stroke-width="1.5"/>`);
  }
  {
    const lx = PAD.left;
    out.push(`<circle cx="${lx + 11}" cy="${LEGEND_Y + 18}" r="3.5" fill="#fff" stroke="${gcColor}" stroke-width="1.5"/>`);
    out.push(`<text x="${lx + 28}" y="${LEGEND_Y + 18}" dominant-baseline="middle">heapUsed just after a major GC (≈ live heap)</text>`);
  }

  // A tick per reclaimed connection.
  if (result.killTimes.length > 0) {
    const base = PAD.top + plotH;
    for (const t of result.killTimes) {
      const xx = x(t).toFixed(1);
      out.push(`<line x1="${xx}" y1="${base}" x2="${xx}" y2="${base - 8}" stroke="#c62828" stroke-width="1"/>`);
    }
    const lx = PAD.left + series.length * LEGEND_STEP;
    out.push(`<line x1="${lx + 11}" y1="${LEGEND_Y - 6}" x2="${lx + 11}" y2="${LEGEND_Y + 4}" stroke="#c62828" stroke-width="1.5"/>`);
    out.push(`<text x="${lx + 28}" y="${LEGEND_Y}" dominant-baseline="middle">connection reclaimed (${result.killTimes.length})</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
