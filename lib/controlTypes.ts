/**
 * The narrow interface the process guards (the heap guard, the stale watch) see of a
 * tracker: its figures, its clock, its pressure state, and one way to ask for a reclamation.
 *
 * The guards never touch the books: they only read these figures and call
 * {@link ReclaimControl.requestReclaim}; the tracker decides when and how the run happens.
 *
 * @module
 */

/** What a process guard may read of a tracker and ask of it. */
export interface ReclaimControl {
  /** `tracker.used`. */
  readonly used: number;
  /** `tracker.max`. */
  readonly max: number;
  /** `tracker.lowWater`. */
  readonly lowWater: number;
  /** `tracker.softMax`. */
  readonly softMax: number;
  /** The tracker's clock, ms (data ages are on it). */
  now(): number;
  /** The `pressure$` state: `true` while it is `'high'`. */
  readonly highPressure: boolean;
  /**
   * Start (or extend) a run that reclaims oldest-first down to `downTo` bytes, considering only
   * accounts whose oldest data is older than `olderThan` (tracker clock) when given. Reported as
   * `reclaim-start { cause }`. No-op when shut down.
   */
  requestReclaim(cause: 'quota' | 'heap' | 'stale', downTo: number, olderThan?: number): void;
  /** Called once at shutdown (to stop timers/observers). */
  onShutdown(stop: () => void): void;
}
