/**
 * The one place that touches Node built-ins: reading the machine's memory for `max: 'auto'`,
 * V8's heap figures for `'auto'` and the heap guard, and the GC entries the guard observes.
 *
 * No `import` of `node:os` or `node:fs` appears anywhere in the library, so a browser bundle
 * never pulls them in. On Node (20.16+) the built-ins come from `process.getBuiltinModule`;
 * in a CommonJS bundle on older Node, from `require`. Anywhere else every reader answers
 * `undefined` and the caller falls back to a fixed default.
 *
 * @module
 */

interface OsLike {
  totalmem(): number;
}
interface FsLike {
  readFileSync(path: string, encoding: 'utf8'): string;
}

/** The part of `v8.getHeapStatistics()` this library reads. */
export interface HeapStatistics {
  /** V8's heap limit (`--max-old-space-size` plus the young generation), bytes. */
  readonly heap_size_limit: number;
  /** Bytes of the heap in use (live data plus garbage not yet collected). */
  readonly used_heap_size: number;
}
interface V8Like {
  getHeapStatistics(): HeapStatistics;
}
interface PerfHooksLike {
  constants?: { NODE_PERFORMANCE_GC_MAJOR?: number };
}

function builtin<T>(name: string): T | undefined {
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    if (typeof proc?.getBuiltinModule === 'function') return proc.getBuiltinModule(name) as T;
    const req = (globalThis as { require?: (id: string) => unknown }).require;
    if (typeof req === 'function') return req(name) as T;
  } catch {
    // fall through: not on Node, or the module is not available
  }
  return undefined;
}

/** Total physical memory in bytes, or `undefined` where it cannot be read. */
export function systemMemory(): number | undefined {
  const total = builtin<OsLike>('node:os')?.totalmem();
  return typeof total === 'number' && total > 0 ? total : undefined;
}

/** Paths of the cgroup memory limit: v2 first, then v1. */
export const CGROUP_LIMIT_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

/**
 * The cgroup memory limit in bytes, or `undefined` where there is none (`max`, an unlimited
 * v1 value near 2^63) or it cannot be read.
 */
export function cgroupMemoryLimit(files: readonly string[] = CGROUP_LIMIT_FILES): number | undefined {
  const fs = builtin<FsLike>('node:fs');
  if (!fs) return undefined;
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    const limit = parseCgroupLimit(text);
    if (limit !== undefined) return limit;
  }
  return undefined;
}

/** Parses a cgroup limit file's text; `undefined` for "no limit" or garbage. */
export function parseCgroupLimit(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined; // 'max' (v2 unlimited) or garbage
  const value = Number(text);
  // v1 says "unlimited" with a page-rounded 2^63 - 1; anything past 2^53 is no real limit.
  return value > 0 && Number.isSafeInteger(value) ? value : undefined;
}

/** `v8.getHeapStatistics()`, or `undefined` off Node. */
export function heapStatistics(): HeapStatistics | undefined {
  try {
    const stats = builtin<V8Like>('node:v8')?.getHeapStatistics();
    return stats && stats.heap_size_limit > 0 ? stats : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Bytes of `heap_size_limit` that old data can never use: V8's young generation, three
 * semi-spaces of 16 MiB on 64-bit Node (`--max-semi-space-size` changes it). Measured:
 * `heap_size_limit` is `--max-old-space-size` + 48 MiB for every size from 64 MiB to 4 GiB.
 */
export const YOUNG_GENERATION_RESERVE = 48 * 1024 * 1024;

/**
 * The part of a heap limit that long-lived data (queued values) can fill: the limit less the
 * young generation ({@link YOUNG_GENERATION_RESERVE}, at most half the limit). Under
 * `--max-old-space-size=N` this is N MiB: the process dies of "heap out of memory" when its
 * live heap reaches it, well before `heap_size_limit`.
 */
export function usableHeap(limit: number): number {
  return limit - Math.min(YOUNG_GENERATION_RESERVE, Math.floor(limit / 2));
}

/**
 * The JavaScript heap's limit in bytes: V8's `heap_size_limit` on Node, Chromium's
 * `performance.memory.jsHeapSizeLimit` in a browser that has it, else `undefined`.
 */
export function heapSizeLimit(): number | undefined {
  const node = heapStatistics()?.heap_size_limit;
  if (node !== undefined) return node;
  const memory = (globalThis as { performance?: { memory?: { jsHeapSizeLimit?: unknown } } }).performance?.memory;
  const limit = memory?.jsHeapSizeLimit;
  return typeof limit === 'number' && limit > 0 && Number.isFinite(limit) ? limit : undefined;
}

/** The `kind` of a major (mark-sweep-compact) GC in a `'gc'` performance entry, or `undefined` off Node. */
export function majorGcKind(): number | undefined {
  return builtin<PerfHooksLike>('node:perf_hooks')?.constants?.NODE_PERFORMANCE_GC_MAJOR;
}
