/**
 * The stale watch: no deadlock on pressure.
 *
 * A producer that pauses while `pressure$` is `'high'` waits for `used` to fall to `lowWater`.
 * If one consumer is stuck for good, its queue can hold `used` between `lowWater` and `max`
 * forever: `max` is never crossed, nothing is reclaimed, pressure never ends. So, while
 * pressure is high, data older than `staleAfter` counts as stuck: every tick the watch asks
 * the tracker to reclaim, oldest-first and only among accounts whose oldest data is older than
 * `now − staleAfter`, down to `lowWater` (`reclaim-start { cause: 'stale' }`).
 *
 * ## The bound
 * While pressure is high, an account whose oldest data is older than `staleAfter` is
 * reclaimed within one tick ({@link staleTick}: `staleAfter / 5`, within [10 ms, 1 s]). So
 * an account stuck when pressure turns high is gone within `staleAfter + tick` (6 s with the
 * defaults), sooner if its data was already old.
 *
 * ## Timers
 * The timer runs only while pressure is high, is `unref()`'d (it never keeps the process
 * alive) and holds the tracker weakly (a forgotten tracker is still collected). It stops when
 * pressure returns to normal and at shutdown. `staleAfter: Infinity` installs nothing.
 *
 * @module
 */
import { resolveStaleAfter } from './config.js';
import type { ReclaimControl } from './control.js';
import type { TrackerOptions } from './types.js';

/** The timer functions the watch uses; default the global ones. For tests. */
export interface StaleTimers {
  setInterval(tick: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** How often the watch looks while pressure is high: `staleAfter / 5`, within [10 ms, 1 s]. */
export function staleTick(staleAfter: number): number {
  return Math.min(1000, Math.max(10, staleAfter / 5));
}

const globalTimers: StaleTimers = {
  setInterval(tick, ms) {
    const handle = setInterval(tick, ms) as unknown as { unref?: () => void };
    handle.unref?.();
    return handle;
  },
  clearInterval(handle) {
    clearInterval(handle as ReturnType<typeof setInterval>);
  },
};

/**
 * Watches `control` for data stuck while pressure is high, and has it reclaimed (a
 * `GuardInstaller`; see the module docs for the rule and its bound). Reads
 * `options.staleAfter` (`Infinity`: nothing happens); follows `control.pressure$`.
 *
 * @param timers The timer functions (default: the global ones, unref'd). For tests.
 */
export function installStaleWatch(control: ReclaimControl, options: TrackerOptions = {}, timers: StaleTimers = globalTimers): void {
  const staleAfter = resolveStaleAfter(options.staleAfter);
  if (!(staleAfter < Infinity)) return;
  const tracker = new WeakRef(control);
  let timer: unknown = undefined;
  const stop = (): void => {
    if (timer === undefined) return;
    const handle = timer;
    timer = undefined;
    timers.clearInterval(handle);
  };
  const tick = (): void => {
    const c = tracker.deref();
    if (c === undefined || !c.highPressure) {
      stop();
      return;
    }
    c.requestReclaim('stale', c.lowWater, c.now() - staleAfter);
  };
  const subscription = control.pressure$.subscribe({
    next: (pressure) => {
      if (pressure === 'normal') stop();
      else if (timer === undefined) timer = timers.setInterval(tick, staleTick(staleAfter));
    },
    complete: stop,
  });
  control.onShutdown(() => {
    stop();
    subscription.unsubscribe();
  });
}
