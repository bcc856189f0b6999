/**
 * The flood's sampler: a time series of what is held (`tracker.used`, or the untracked
 * queues' total), `heapUsed`, RSS, the bytes sitting in the kernel's socket buffers, and the
 * connections alive; the peaks; `heapUsed` just after each major GC (observed, not forced);
 * and how late the sampler ran (event-loop stalls).
 *
 * @module
 */
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';

/** One point of the time series. */
export interface Sample {
  /** Seconds since the producer started. */
  readonly t: number;
  /** Bytes held in the connection queues: `tracker.used`, or the untracked queues' total. */
  readonly held: number;
  /** Bytes in the kernel's socket buffers (server send + client receive), live connections. */
  readonly kernel: number;
  /** `process.memoryUsage().heapUsed`. */
  readonly heapUsed: number;
  /** `process.memoryUsage().rss`. */
  readonly rss: number;
  /** Connections still served. */
  readonly alive: number;
  /** Connections reclaimed so far. */
  readonly killed: number;
}

/** What the sampler reads at each tick. */
export interface Probes {
  readonly clock: () => number;
  readonly held: () => number;
  readonly kernel: () => number;
  readonly alive: () => number;
  readonly killed: () => number;
}

/** The sampler's record of a run. */
export class Sampler {
  readonly samples: Sample[] = [];
  peakHeld = 0;
  peakKernel = 0;
  peakHeapUsed = 0;
  peakRss = 0;
  peakLiveHeapUsed: number | null = null;
  maxStallMs = 0;
  readonly majorGcs: { t: number; heapUsed: number }[] = [];
  private readonly observer: PerformanceObserver;
  private lastLive = -Infinity;
  private lastSampleAt = performance.now();

  /**
   * @param probes What to read.
   * @param liveHeapEveryMs If set, every this many ms a full GC is forced before a sample and
   *   the heap left after it (the live heap) recorded. Needs `--expose-gc`.
   */
  constructor(
    private readonly probes: Probes,
    private readonly liveHeapEveryMs: number | undefined,
  ) {
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const detail = (entry as { detail?: unknown }).detail as { kind?: number } | undefined;
        if (detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) this.majorGcs.push({ t: probes.clock(), heapUsed: process.memoryUsage().heapUsed });
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** Takes a sample; `periodMs` (if given) is the period it was due at, to measure stalls. */
  take(periodMs?: number): Sample {
    const at = performance.now();
    if (periodMs !== undefined) this.maxStallMs = Math.max(this.maxStallMs, at - this.lastSampleAt - periodMs);
    this.lastSampleAt = at;
    const gc = (globalThis as { gc?: () => void }).gc;
    if (this.liveHeapEveryMs !== undefined && gc && at - this.lastLive >= this.liveHeapEveryMs) {
      this.lastLive = at;
      gc();
      this.peakLiveHeapUsed = Math.max(this.peakLiveHeapUsed ?? 0, process.memoryUsage().heapUsed);
    }
    const mem = process.memoryUsage();
    const p = this.probes;
    const sample: Sample = { t: p.clock(), held: p.held(), kernel: p.kernel(), heapUsed: mem.heapUsed, rss: mem.rss, alive: p.alive(), killed: p.killed() };
    this.peakHeld = Math.max(this.peakHeld, sample.held);
    this.peakKernel = Math.max(this.peakKernel, sample.kernel);
    this.peakHeapUsed = Math.max(this.peakHeapUsed, sample.heapUsed);
    this.peakRss = Math.max(this.peakRss, sample.rss);
    this.samples.push(sample);
    return sample;
  }

  stop(): void {
    this.observer.disconnect();
  }
}
