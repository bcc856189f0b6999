/**
 * A binary min-heap keyed by a number, used to pick reclamation victims.
 *
 * Built in O(n) from all candidates when a reclamation run starts; each victim is then an
 * O(log n) pop, so a run over n accounts costs O(n log n) whatever the number of victims.
 *
 * @module
 */

/** A min-heap of values ordered by a numeric key (smallest first). */
export class MinHeap<T> {
  private readonly keys: number[];
  private readonly values: T[];

  /** Builds the heap in O(n) from parallel arrays (which it takes over). */
  constructor(keys: number[] = [], values: T[] = []) {
    this.keys = keys;
    this.values = values;
    for (let i = (keys.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  /** Number of entries. */
  get size(): number {
    return this.keys.length;
  }

  /** The smallest key, or `undefined` when empty. */
  peekKey(): number | undefined {
    return this.keys[0];
  }

  /** Adds an entry. */
  push(key: number, value: T): void {
    this.keys.push(key);
    this.values.push(value);
    this.up(this.keys.length - 1);
  }

  /** Key of the entry the last `pop()` returned. */
  lastKey = 0;

  /** Removes and returns the value with the smallest key (its key in `lastKey`). */
  pop(): T | undefined {
    const n = this.keys.length;
    if (n === 0) return undefined;
    const key = this.keys[0]!;
    const value = this.values[0]!;
    const lastKey = this.keys.pop()!;
    const lastValue = this.values.pop()!;
    if (n > 1) {
      this.keys[0] = lastKey;
      this.values[0] = lastValue;
      this.down(0);
    }
    this.lastKey = key;
    return value;
  }

  private up(i: number): void {
    const { keys, values } = this;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= keys[i]!) break;
      this.swap(keys, values, i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const { keys, values } = this;
    const n = keys.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && keys[right]! < keys[left]! ? right : left;
      if (keys[i]! <= keys[child]!) break;
      this.swap(keys, values, i, child);
      i = child;
    }
  }

  private swap(keys: number[], values: T[], a: number, b: number): void {
    const k = keys[a]!;
    keys[a] = keys[b]!;
    keys[b] = k;
    const v = values[a]!;
    values[a] = values[b]!;
    values[b] = v;
  }
}
