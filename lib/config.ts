/**
 * Validating a {@link MemquotaConfig} into the numbers the tracker runs on.
 *
 * @module
 */
import { ConfigError } from './errors.js';
import { cgroupMemoryLimit, heapSizeLimit, systemMemory, usableHeap } from './system.js';
import type { MemquotaConfig } from './types.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The smallest `max` that `'auto'` derives. */
export const AUTO_MAX_FLOOR = 256 * MiB;
/** The largest `max` that `'auto'` derives. */
export const AUTO_MAX_CEILING = 8 * GiB;
/** `max: 'auto'` where the machine's memory cannot be read (a browser): 256 MiB. */
export const AUTO_MAX_FALLBACK = 256 * MiB;
/**
 * The share of the usable JavaScript heap (`heap_size_limit` on Node, `jsHeapSizeLimit` in
 * Chromium, less the young generation: see `usableHeap`) that `'auto'` gives `max`: queued JS
 * values live on that heap, and V8 needs the rest for garbage, queue overhead and the rest of
 * the application. Chosen by experiment (README, "Protecting a real process").
 */
export const AUTO_HEAP_SHARE = 0.5;
/** The heap guard's default mark: a fraction of the usable heap (README, "Protecting a real process"). */
export const DEFAULT_HEAP_MARK = 0.8;
/** Data older than this (ms) is reclaimed while pressure is high, by default. */
export const DEFAULT_STALE_AFTER = 5000;
/** Largest allowed `lowWater / max`. */
export const MAX_LOW_WATER_RATIO = 0.98;

/** A validated configuration. `max === Infinity` means tracking is disabled. */
export interface ResolvedConfig {
  readonly max: number;
  readonly lowWater: number;
  readonly softMax: number;
}

/**
 * The `'auto'` limit for a machine with `total` bytes available (the smaller of system memory
 * and the cgroup limit) and a JavaScript heap limited to `heapLimit` bytes.
 *
 * - By memory: 75 % of `total` (40 % at 8 GiB and above), clamped to [256 MiB, 8 GiB];
 *   `undefined` (unreadable, a browser) gives {@link AUTO_MAX_FALLBACK}.
 * - By heap: {@link AUTO_HEAP_SHARE} of the usable part of `heapLimit` (`usableHeap`: less V8's
 *   young generation), with no floor (a small heap gets a small quota), capped at the ceiling.
 * - `max` is the smaller of the two where both are known; where only the heap limit is known
 *   (a Chromium page), the heap share alone.
 */
export function autoMax(total: number | undefined, heapLimit?: number): number {
  const knownTotal = total !== undefined && total > 0;
  const knownHeap = heapLimit !== undefined && heapLimit > 0 && Number.isFinite(heapLimit);
  const byHeap = knownHeap ? Math.min(AUTO_MAX_CEILING, Math.max(1, Math.floor(usableHeap(heapLimit) * AUTO_HEAP_SHARE))) : Infinity;
  if (!knownTotal) return knownHeap ? byHeap : AUTO_MAX_FALLBACK;
  const share = total >= 8 * GiB ? 0.4 : 0.75;
  const byMemory = Math.min(AUTO_MAX_CEILING, Math.max(AUTO_MAX_FLOOR, Math.floor(total * share)));
  return Math.min(byMemory, byHeap);
}

/** The memory this machine (and its cgroup) lets the process have, or `undefined`. */
export function availableMemory(): number | undefined {
  const system = systemMemory();
  const cgroup = cgroupMemoryLimit();
  if (system === undefined) return cgroup;
  return cgroup === undefined ? system : Math.min(system, cgroup);
}

function isBytes(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * Validates `config` and fills in the defaults.
 *
 * @throws ConfigError naming the fields and the problem.
 */
export function resolveConfig(config: MemquotaConfig | undefined): ResolvedConfig {
  if (config === undefined) config = {};
  if (config === null || typeof config !== 'object') {
    throw new ConfigError([], `config must be an object, got ${describe(config)}`);
  }
  const { max = 'auto', lowWater = 'auto', softMax = 'auto' } = config;
  for (const [field, value] of [['lowWater', lowWater], ['softMax', softMax]] as const) {
    if (value !== 'auto' && !isBytes(value)) {
      throw new ConfigError([field], `${field} must be 'auto' or a positive safe integer of bytes, got ${describe(value)}`);
    }
  }
  if (max === Infinity) return { max: Infinity, lowWater: Infinity, softMax: Infinity };
  if (max !== 'auto' && !isBytes(max)) {
    throw new ConfigError(['max'], `max must be 'auto', Infinity or a positive safe integer of bytes, got ${describe(max)}`);
  }
  if (max === 'auto' && lowWater !== 'auto') {
    throw new ConfigError(['max', 'lowWater'], `an explicit lowWater (${lowWater}) needs an explicit max; with max 'auto' lowWater must be 'auto'`);
  }
  if (max === 'auto' && softMax !== 'auto') {
    throw new ConfigError(['max', 'softMax'], `an explicit softMax (${softMax}) needs an explicit max; with max 'auto' softMax must be 'auto'`);
  }
  const maxBytes = max === 'auto' ? autoMax(availableMemory(), heapSizeLimit()) : max;
  const lowBytes = lowWater === 'auto' ? Math.floor(maxBytes * 0.75) : lowWater;
  if (lowBytes > maxBytes * MAX_LOW_WATER_RATIO) {
    throw new ConfigError(['lowWater', 'max'], `lowWater (${lowBytes}) must not exceed 98 % of max (${maxBytes})`);
  }
  const softBytes = softMax === 'auto' ? Math.max(lowBytes, Math.floor(maxBytes * 0.9)) : softMax;
  if (softBytes < lowBytes || softBytes > maxBytes) {
    throw new ConfigError(['softMax', 'lowWater', 'max'], `softMax (${softBytes}) must lie between lowWater (${lowBytes}) and max (${maxBytes})`);
  }
  return { max: maxBytes, lowWater: lowBytes, softMax: softBytes };
}

/**
 * Validates the `heapGuard` option: `true` / `undefined` (on, default mark), `false` (off),
 * or `{ mark }` with `0 < mark < 1`, a fraction of the usable heap.
 *
 * @return The mark, or `undefined` when the guard is off.
 * @throws ConfigError naming `heapGuard` (or `heapGuard.mark`).
 */
export function resolveHeapGuard(option: unknown): number | undefined {
  if (option === undefined || option === true) return DEFAULT_HEAP_MARK;
  if (option === false) return undefined;
  if (option === null || typeof option !== 'object' || Object.keys(option).some((key) => key !== 'mark')) {
    throw new ConfigError(['heapGuard'], `heapGuard must be true, false or { mark }, got ${describe(option)}`);
  }
  const { mark = DEFAULT_HEAP_MARK } = option as { mark?: unknown };
  if (typeof mark !== 'number' || !(mark > 0 && mark < 1)) {
    throw new ConfigError(['heapGuard'], `heapGuard.mark must be a fraction of the usable heap between 0 and 1 (exclusive), got ${describe(mark)}`);
  }
  return mark;
}

/**
 * Validates the `staleAfter` option: milliseconds (> 0), `Infinity` to turn the stale watch
 * off, `undefined` for {@link DEFAULT_STALE_AFTER}.
 *
 * @throws ConfigError naming `staleAfter`.
 */
export function resolveStaleAfter(option: unknown): number {
  if (option === undefined) return DEFAULT_STALE_AFTER;
  if (typeof option !== 'number' || !(option > 0)) {
    throw new ConfigError(['staleAfter'], `staleAfter must be a positive number of milliseconds or Infinity, got ${describe(option)}`);
  }
  return option;
}
