/**
 * `memoryCost`: the default estimate of what a value costs in memory.
 *
 * @module
 */

const MAX_DEPTH = 4;
const MAX_ENTRIES = 1000;
/** Bytes charged for any value's slot (pointer + header overhead on V8, roughly). */
const SLOT = 8;
const OBJECT_HEADER = 24;

/**
 * An estimate, in bytes, of the memory that `value` holds. The default `cost` of the operators.
 *
 * Rules (V8-ish, deliberately simple and cheap):
 * - `null`, `undefined`, booleans, numbers: 8; bigint: 8 + 8 per 64 bits; symbols, functions: 8.
 * - strings: 16 + 2 per UTF-16 unit (an upper bound; one-byte strings cost less).
 * - `ArrayBuffer`, `Buffer`, typed arrays, `DataView`: 64 + `byteLength`.
 * - arrays, `Set`: 24 + the cost of each entry; plain objects and `Map`: 24 + keys + values.
 * - nesting is followed to depth 4 and at most 1000 entries per container; deeper or
 *   further content counts 8 a slot. Cycles are safe: a container already counted costs 8.
 *
 * Pass your own `cost` to the operators when you know better (e.g. `(chunk) => chunk.length`).
 *
 * @param value Any value.
 * @return A non-negative safe integer.
 */
export function memoryCost(value: unknown): number {
  return costOf(value, 0, null);
}

function costOf(value: unknown, depth: number, seen: Set<object> | null): number {
  switch (typeof value) {
    case 'string':
      return 16 + 2 * value.length;
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'symbol':
    case 'function':
      return SLOT;
    case 'bigint': {
      const bits = value < 0n ? (-value).toString(2).length : value.toString(2).length;
      return SLOT + 8 * Math.ceil(bits / 64);
    }
    case 'object':
      break;
  }
  if (value === null) return SLOT;
  const obj = value as object;
  if (ArrayBuffer.isView(obj)) return 64 + obj.byteLength;
  if (obj instanceof ArrayBuffer) return 64 + obj.byteLength;
  if (depth >= MAX_DEPTH) return SLOT;
  if (seen === null) seen = new Set();
  else if (seen.has(obj)) return SLOT;
  seen.add(obj);
  let total = OBJECT_HEADER;
  let n = 0;
  if (Array.isArray(obj)) {
    for (const item of obj) {
      if (n++ >= MAX_ENTRIES) {
        total += SLOT * (obj.length - MAX_ENTRIES);
        break;
      }
      total += costOf(item, depth + 1, seen);
    }
  } else if (obj instanceof Map) {
    for (const [k, v] of obj) {
      if (n++ >= MAX_ENTRIES) {
        total += 2 * SLOT * (obj.size - MAX_ENTRIES);
        break;
      }
      total += costOf(k, depth + 1, seen) + costOf(v, depth + 1, seen);
    }
  } else if (obj instanceof Set) {
    for (const item of obj) {
      if (n++ >= MAX_ENTRIES) {
        total += SLOT * (obj.size - MAX_ENTRIES);
        break;
      }
      total += costOf(item, depth + 1, seen);
    }
  } else {
    for (const key in obj) {
      if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
      if (n++ >= MAX_ENTRIES) {
        total += 2 * SLOT;
        continue;
      }
      total += 16 + 2 * key.length + costOf((obj as Record<string, unknown>)[key], depth + 1, seen);
    }
  }
  return total;
}
