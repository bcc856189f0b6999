/**
 * What the books saw: an untimed run of a benchmark's subject with `tracker.usage$` watched,
 * counting every increase of `used` (a claim), every decrease (a release or tear-down) and the
 * peak. The timed rounds run without a watcher (a `usage$` subscriber makes the tracker build a
 * snapshot per change); the probe runs the very same function once, after them, so its counts
 * are what each timed round did. After, not before: a probe run first teaches the JIT the
 * watched path (a snapshot per claim) and B3's timed claims came out 1.5× slower for it.
 *
 * @module
 */
import type { MemoryQuotaTracker } from '../index.js';
import { sink } from './harness.js';

/** Counts of one probed run. */
export interface BooksSeen {
  /** Changes of the books that raised `used`. */
  readonly claims: number;
  /** Changes that lowered it. */
  readonly releases: number;
  /** Highest `used` seen, bytes. */
  readonly peakBytes: number;
}

/** Runs `run` once (awaited) while watching `tracker.usage$`. */
export async function probeBooks(tracker: MemoryQuotaTracker, run: () => unknown): Promise<BooksSeen> {
  let last = tracker.used;
  let claims = 0;
  let releases = 0;
  let peakBytes = last;
  const watch = tracker.usage$.subscribe(({ used }) => {
    if (used > last) claims++;
    else if (used < last) releases++;
    if (used > peakBytes) peakBytes = used;
    last = used;
  });
  try {
    const result = run();
    sink(result instanceof Promise ? await result : result);
  } finally {
    watch.unsubscribe();
  }
  return { claims, releases, peakBytes };
}

/** The WARNING reason when a run meant to claim booked nothing, else `null`. */
export function noClaims(seen: BooksSeen): string | null {
  return seen.claims === 0 ? 'the quota was not exercised: no claims booked' : null;
}
