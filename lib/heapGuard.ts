/**
 * The heap guard: reclaims oldest-first when the live JavaScript heap nears its limit, even
 * while `used` looks fine (costs that under-state the truth, values holding more than their
 * cost says).
 *
 * ## How it works
 * - **When**: after each major (mark-sweep-compact) GC, observed through `PerformanceObserver`
 *   `'gc'` entries. Right after a major GC, `used_heap_size` is the live heap (little garbage
 *   is left). No timer: an observer does not keep the process alive.
 * - **Mark**: `mark × usable heap` (default 0.8, `DEFAULT_HEAP_MARK`), where the usable heap is
 *   `heap_size_limit` less V8's young generation (`usableHeap`): under
 *   `--max-old-space-size=N` the process dies when its live heap nears N MiB, not
 *   `heap_size_limit` (N + 48 MiB). At or below the mark the guard does nothing.
 * - **How much**: above the mark, the heap must lose `excess = live − ` {@link HEAP_GUARD_HYSTERESIS}
 *   `× mark × usable` (hysteresis, as `lowWater` is for `max`: the heap goes back a little under
 *   the mark, so the next major GC does not find it above again). Trackers are asked to reclaim
 *   the excess in proportion to what they hold, by their own books:
 *   `downTo = used − ⌈excess × used / Σ used⌉` (clamped at 0), oldest-first, as if `max` had
 *   been crossed (`reclaim-start { cause: 'heap' }`). When costs under-state the truth, each
 *   tracked byte reclaimed frees more than a byte of heap, so the estimate errs on the safe side.
 * - **Sharing**: one observer per process for all trackers. It holds the trackers weakly, so a
 *   forgotten tracker is still collected; a tracker leaves at shutdown; the observer is
 *   disconnected when the last one has left.
 *
 * Off Node (no `'gc'` entries, no heap statistics) the guard does nothing.
 *
 * @module
 */
import { resolveHeapGuard } from './config.js';
import type { ReclaimControl } from './control.js';
import type { TrackerOptions } from './types.js';
import { heapStatistics, majorGcKind, usableHeap, type HeapStatistics } from './system.js';

/** The guard reclaims until the live heap is back at this fraction of the mark (by its estimate). */
export const HEAP_GUARD_HYSTERESIS = 0.9;

/** Starts watching major GCs, calling `onMajorGc` after each; returns the stop function, or `undefined` where GCs cannot be observed. */
export type ObserveMajorGcs = (onMajorGc: () => void) => (() => void) | undefined;

interface Guarded {
  readonly control: WeakRef<ReclaimControl>;
  readonly mark: number;
}

/**
 * The trackers guarded against one heap, and the one GC observer they share.
 *
 * The observer starts with the first tracker and stops when none is left (shut down or
 * collected). Each major GC reads the heap once and asks every tracker for its share.
 */
export class HeapGuards {
  private readonly guarded = new Set<Guarded>();
  private stopObserving: (() => void) | undefined = undefined;
  private observing = false;
  /** Major GCs seen and heap-guard requests made, for tests and diagnostics. */
  readonly seen = { majorGcs: 0, requests: 0 };

  /**
   * @param readHeap Reads the heap (`v8.getHeapStatistics()`); `undefined` = unknown.
   * @param observe Starts the GC observer.
   */
  constructor(
    private readonly readHeap: () => HeapStatistics | undefined = heapStatistics,
    private readonly observe: ObserveMajorGcs = observeMajorGcs,
  ) {}

  /** Trackers currently guarded (collected ones may still count until the next GC). */
  get size(): number {
    return this.guarded.size;
  }

  /** Whether the GC observer is running. */
  get active(): boolean {
    return this.observing;
  }

  /** Guards `control` at `mark` until `control.onShutdown` fires (where GCs can be observed; else does nothing). */
  add(control: ReclaimControl, mark: number): void {
    if (!this.observing) {
      const stop = this.observe(() => this.afterMajorGc());
      if (stop === undefined) return; // GCs cannot be observed here (a browser): nothing to guard with
      this.observing = true;
      this.stopObserving = stop;
    }
    const entry: Guarded = { control: new WeakRef(control), mark };
    this.guarded.add(entry);
    control.onShutdown(() => this.remove(entry));
  }

  /** What a major GC leads to: read the live heap, ask each tracker above its mark for its share. */
  afterMajorGc(): void {
    this.seen.majorGcs++;
    const heap = this.readHeap();
    let total = 0;
    const live: [Guarded, ReclaimControl][] = [];
    for (const entry of [...this.guarded]) {
      const control = entry.control.deref();
      if (control === undefined) this.remove(entry);
      else {
        live.push([entry, control]);
        total += control.used;
      }
    }
    if (heap === undefined || total === 0) return;
    const usable = usableHeap(heap.heap_size_limit);
    for (const [entry, control] of live) {
      if (heap.used_heap_size <= entry.mark * usable || control.used === 0) continue;
      const excess = heap.used_heap_size - HEAP_GUARD_HYSTERESIS * entry.mark * usable;
      const downTo = Math.max(0, control.used - Math.ceil((excess * control.used) / total));
      this.seen.requests++;
      control.requestReclaim('heap', downTo);
    }
  }

  private remove(entry: Guarded): void {
    if (!this.guarded.delete(entry) || this.guarded.size !== 0) return;
    this.observing = false;
    const stop = this.stopObserving;
    this.stopObserving = undefined;
    stop?.();
  }
}

/** Observes major GCs with `PerformanceObserver` `'gc'` entries, where they exist (Node). */
export function observeMajorGcs(onMajorGc: () => void): (() => void) | undefined {
  const major = majorGcKind();
  const Observer = (globalThis as { PerformanceObserver?: typeof PerformanceObserver }).PerformanceObserver;
  if (major === undefined || Observer === undefined || !Observer.supportedEntryTypes?.includes('gc')) return undefined;
  const observer = new Observer((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind === major) {
        onMajorGc();
        return; // one look at the heap per batch of entries
      }
    }
  });
  observer.observe({ type: 'gc' });
  return () => observer.disconnect();
}

let processGuards: HeapGuards | undefined;

/** The process's one registry of heap-guarded trackers (created on first use). */
export function processHeapGuards(): HeapGuards {
  return (processGuards ??= new HeapGuards());
}

/**
 * Guards the process's heap for one tracker (a `GuardInstaller`): reads `options.heapGuard`
 * (off: nothing happens); after each major GC, if the live heap is above `mark ×` the usable
 * heap, asks `control` to reclaim its share of the excess (cause `'heap'`). Stops at
 * `control`'s shutdown.
 *
 * @param guards The registry to join; default the process's own. For tests.
 */
export function installHeapGuard(control: ReclaimControl, options: TrackerOptions = {}, guards: HeapGuards = processHeapGuards()): void {
  const mark = resolveHeapGuard(options.heapGuard);
  if (mark !== undefined) guards.add(control, mark);
}
