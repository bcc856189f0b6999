/**
 * The hooks a guard uses to drive reclamation: the heap guard (`lib/heapGuard.ts`) and the
 * staleness guard (`lib/staleness.ts`) see a tracker only through {@link ReclaimControl}.
 *
 * A tracker makes its control in `MemoryQuotaTracker.create()` and hands it to each guard's
 * installer ({@link GuardInstaller}); `controlOf(tracker)` gives it to specs.
 *
 * @module
 * @internal
 */
import type { Observable } from 'rxjs';
import type { ReclaimCause, TrackerOptions } from './types.js';

/** What a guard may see and do of a tracker. */
export interface ReclaimControl {
  /** `tracker.used`. */
  readonly used: number;
  /** `tracker.max`. */
  readonly max: number;
  /** `tracker.lowWater`. */
  readonly lowWater: number;
  /** `tracker.softMax`. */
  readonly softMax: number;
  /** The tracker's clock (ms). */
  now(): number;
  /** The `pressure$` state: true while `'high'`. */
  readonly highPressure: boolean;
  /** `tracker.pressure$`: the staleness guard runs its timer only while it is `'high'`. */
  readonly pressure$: Observable<'normal' | 'high'>;
  /**
   * Start (or extend) a run that reclaims oldest-first down to `downTo` bytes, considering only
   * accounts whose oldest data is older than `olderThan` (tracker clock) when given. Reported as
   * `reclaim-start { cause }` and counted in `stats` by cause. No-op when shut down.
   */
  requestReclaim(cause: ReclaimCause, downTo: number, olderThan?: number): void;
  /** Called once at shutdown (to stop timers/observers); at once if already shut down. */
  onShutdown(stop: () => void): void;
}

/** A guard's installer: called once by `MemoryQuotaTracker.create()` with the new tracker's control. */
export type GuardInstaller = (control: ReclaimControl, options: TrackerOptions) => void;

const controls = new WeakMap<object, ReclaimControl>();

/** @internal Records `tracker`'s control (called by the tracker's constructor). */
export function registerControl(tracker: object, control: ReclaimControl): void {
  controls.set(tracker, control);
}

/**
 * The control of `tracker`, for guards and specs.
 *
 * @throws TypeError for anything but a tracker.
 */
export function controlOf(tracker: object): ReclaimControl {
  const control = controls.get(tracker);
  if (control === undefined) throw new TypeError('controlOf: not a MemoryQuotaTracker');
  return control;
}
