/**
 * The one place that touches Node built-ins: reading the machine's memory for `max: 'auto'`.
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
