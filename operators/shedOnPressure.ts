/**
 * `shedOnPressure`: drop (or refuse with an error) new values while a tracker is under
 * memory pressure.
 *
 * @module
 */
import { filter, Observable, type MonoTypeOperatorFunction } from 'rxjs';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import { checkOptions, checkShedMode } from './internal/options.js';

/** Options of {@link shedOnPressure}. */
export interface ShedOnPressureOptions {
  /**
   * What to do with a value that arrives while pressure is `'high'`: `'drop'` it silently
   * (default), or `'error'` the subscriber with a {@link PressureError}.
   */
  mode?: 'drop' | 'error';
}

/**
 * What a `shedOnPressure(tracker, { mode: 'error' })` stream emits to its subscriber when a
 * value arrives while the tracker's `pressure$` is `'high'`.
 *
 * Not a `MemquotaError`: nothing went wrong with the quota system; the stream refused work to
 * keep the process out of reclamation. `used` and `softMax` are the tracker's figures at the
 * moment the value was refused.
 */
export class PressureError extends Error {
  /** `tracker.used` when the value was refused. */
  readonly used: number;
  /** `tracker.softMax` when the value was refused. */
  readonly softMax: number;

  /**
   * @param used `tracker.used` when the value was refused.
   * @param softMax `tracker.softMax` when the value was refused.
   */
  constructor(used: number, softMax: number) {
    super(`memory pressure is high (${used} bytes used, softMax ${softMax}): shedOnPressure refused a value`);
    this.name = 'PressureError';
    this.used = used;
    this.softMax = softMax;
  }
}

/**
 * Drops the source's values while the tracker's memory pressure is high, or errors with a
 * {@link PressureError} instead (`mode: 'error'`).
 *
 * <span class="informal">Shed load before the quota has to kill a stream.</span>
 *
 * ```text
 * pressure$:  n----h--------n------      n = 'normal', h = 'high'
 * source:     --a---b--c--d---e--|
 * drop:       --a-------------e--|       b, c, d arrive while pressure is high
 * error:      --a---#                    # = PressureError
 * ```
 *
 * `tracker.pressure$` turns `'high'` when `used` passes `softMax` and `'normal'` again once it
 * is back at or below `lowWater` (hysteresis), so a producer that sheds gives the consumers
 * room to drain before anything is reclaimed. Each subscription subscribes to `pressure$`
 * once (before the source, so the first value already sees the current level) and
 * unsubscribes from it on teardown. Deciding a value reads one flag: nothing is allocated per
 * value. After the tracker shuts down (`pressure$` completes) nothing is shed.
 *
 * ## Example
 * ```ts
 * import { MemoryQuotaTracker, memquota, shedOnPressure } from 'rxjs-memquota';
 * import { interval, map } from 'rxjs';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 64 * 1024 * 1024 });
 * interval(10)
 *   .pipe(
 *     map((i) => ({ i, at: Date.now() })),
 *     shedOnPressure(tracker),              // telemetry: losing samples under load is fine
 *     memquota(() => tracker.newAccount()),
 *   )
 *   .subscribe((sample) => console.log(sample.i));
 * ```
 *
 * @see {@link MemoryQuotaTracker.pressure$}
 * @see {@link PressureError}
 *
 * @param tracker The tracker whose `pressure$` decides.
 * @param options `mode`: `'drop'` (default) or `'error'`.
 * @return An operator that mirrors the source except for the values it sheds.
 * @throws TypeError for a tracker that is not a `MemoryQuotaTracker` or an unknown `mode`
 *   (at creation, not at subscription).
 */
export function shedOnPressure<T>(tracker: MemoryQuotaTracker, options: ShedOnPressureOptions = {}): MonoTypeOperatorFunction<T> {
  if (!(tracker instanceof MemoryQuotaTracker)) {
    throw new TypeError(`shedOnPressure: tracker must be a MemoryQuotaTracker, got ${tracker === null ? 'null' : typeof tracker}`);
  }
  checkOptions(options, 'shedOnPressure');
  const mode = checkShedMode(options.mode, 'shedOnPressure');

  return (source) =>
    new Observable<T>((subscriber) => {
      let high = false;
      subscriber.add(
        tracker.pressure$.subscribe({
          next: (level) => {
            high = level === 'high';
          },
          // A shut-down tracker completes pressure$ without going back to 'normal'.
          complete: () => {
            high = false;
          },
        }),
      );
      // A throw inside filter's predicate becomes subscriber.error (RxJS convention), and
      // handing `subscriber` itself to the source chain lets a synchronous source stop as soon
      // as the subscriber unsubscribes.
      source
        .pipe(
          filter(() => {
            if (!high) return true;
            if (mode === 'drop') return false;
            throw new PressureError(tracker.used, tracker.softMax);
          }),
        )
        .subscribe(subscriber);
    });
}
