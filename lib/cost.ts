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
/** Containers remembered in a plain array before a Set is used (most values have fewer). */
const FEW = 16;

/**
 * The containers already counted in one `memoryCost` call: the first few in a small array
 * (a linear scan beats hashing at this size, and nothing is allocated), more in a Set made
 * only for values with many containers. One instance is reused across calls.
 */
class Seen {
  private readonly few: (object | undefined)[] = new Array<object | undefined>(FEW).fill(undefined);
  private count = 0;
  private many: Set<object> | null = null;

  /** Remembers `obj`; returns false if it was remembered already. */
  add(obj: object): boolean {
    const few = this.few;
    const n = this.count < FEW ? this.count : FEW;
    for (let i = 0; i < n; i++) if (few[i] === obj) return false;
    if (this.count < FEW) {
      few[this.count++] = obj;
      return true;
    }
    const many = (this.many ??= new Set());
    if (many.has(obj)) return false;
    many.add(obj);
    return true;
  }

  /** Forgets everything (so that no value is kept alive between calls). */
  clear(): void {
    const n = this.count < FEW ? this.count : FEW;
    for (let i = 0; i < n; i++) this.few[i] = undefined;
    this.count = 0;
    this.many = null;
  }
}

/** The reusable `Seen`, or `null` while a call uses it (a getter may call `memoryCost` again). */
let idle: Seen | null = new Seen();

/**
 * An estimate, in bytes, of the memory that `value` holds. The default `cost` of the operators.
 *
 * Rules (V8-ish, deliberately simple and cheap):
 * - `null`, `undefined`, booleans, numbers: 8; bigint: 8 + 8 per 64 bits; symbols, functions: 8.
 * - strings: 16 + 2 per UTF-16 unit (an upper bound; one-byte strings cost less).
 * - `ArrayBuffer`, `Buffer`, typed arrays, `DataView`: 64 + `byteLength`.
 * - arrays, `Set`: 24 + the cost of each entry; plain objects and `Map`: 24 + keys + values
 *   (own enumerable string keys, 16 + 2 per unit each).
 * - nesting is followed to depth 4 and at most 1000 entries per container; deeper or
 *   further content counts 8 a slot. Cycles are safe, and a container met again (a cycle, or
 *   one object referenced twice) costs 8: memory held once is counted once.
 * - it never throws: a value that cannot be inspected (a getter that throws, a revoked
 *   `Proxy`, a Proxy whose traps throw) is counted as far as it could be read, plus 8.
 *
 * It allocates nothing for values with up to 16 containers. Pass your own `cost` to the
 * operators when you know better (e.g. `(chunk) => chunk.length`).
 *
 * @param value Any value.
 * @return A non-negative safe integer.
 */
export function memoryCost(value: unknown): number {
  if (typeof value !== 'object' || value === null) return leafCost(value);
  const seen = idle ?? new Seen();
  idle = null;
  try {
    return objectCost(value, 0, seen);
  } finally {
    seen.clear();
    idle = seen;
  }
}

/** The cost of anything that is not an object. */
function leafCost(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 16 + 2 * value.length;
    case 'bigint': {
      const bits = value < 0n ? (-value).toString(2).length : value.toString(2).length;
      return SLOT + 8 * Math.ceil(bits / 64);
    }
    default:
      return SLOT;
  }
}

function costOf(value: unknown, depth: number, seen: Seen): number {
  return typeof value === 'object' && value !== null ? objectCost(value, depth, seen) : leafCost(value);
}

function objectCost(obj: object, depth: number, seen: Seen): number {
  let total = 0;
  try {
    if (ArrayBuffer.isView(obj)) return 64 + obj.byteLength;
    if (obj instanceof ArrayBuffer) return 64 + obj.byteLength;
    if (depth >= MAX_DEPTH || !seen.add(obj)) return SLOT;
    total = OBJECT_HEADER;
    let n = 0;
    if (Array.isArray(obj)) {
      const length = obj.length;
      const shown = length < MAX_ENTRIES ? length : MAX_ENTRIES;
      for (let i = 0; i < shown; i++) total += costOf(obj[i], depth + 1, seen);
      total += SLOT * (length - shown);
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
  } catch {
    // Could not be read to the end (a throwing getter or trap, a revoked Proxy): what was
    // counted, and a slot for the rest.
    return (total === 0 ? OBJECT_HEADER : total) + SLOT;
  }
}
