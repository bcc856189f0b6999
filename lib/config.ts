/**
 * Validating a {@link MemquotaConfig} into the numbers the tracker runs on.
 *
 * @module
 */
import { ConfigError } from './errors.js';
import { cgroupMemoryLimit, systemMemory } from './system.js';
import type { MemquotaConfig } from './types.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The smallest `max` that `'auto'` derives. */
export const AUTO_MAX_FLOOR = 256 * MiB;
/** The largest `max` that `'auto'` derives. */
export const AUTO_MAX_CEILING = 8 * GiB;
/** `max: 'auto'` where the machine's memory cannot be read (a browser): 256 MiB. */
export const AUTO_MAX_FALLBACK = 256 * MiB;
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
 * and the cgroup limit): 75 % of it (40 % at 8 GiB and above), clamped to [256 MiB, 8 GiB].
 * `undefined` (unreadable) gives {@link AUTO_MAX_FALLBACK}.
 */
export function autoMax(total: number | undefined): number {
  if (total === undefined || !(total > 0)) return AUTO_MAX_FALLBACK;
  const share = total >= 8 * GiB ? 0.4 : 0.75;
  return Math.min(AUTO_MAX_CEILING, Math.max(AUTO_MAX_FLOOR, Math.floor(total * share)));
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
  const maxBytes = max === 'auto' ? autoMax(availableMemory()) : max;
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
