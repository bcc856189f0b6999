/**
 * The storage of every queue operator: a FIFO ring of values with their byte cost and
 * arrival time. Push and shift are O(1) and allocate nothing (a full ring is replaced by one
 * twice its size, amortized); no `Array.shift`.
 *
 * A queue *has* a ring (a field that is `null` while the queue has never held a value, so an
 * idle stream pays one field for its storage) and keeps it while it lives:
 * `this.ring = CostRing.push(this.ring, value, cost, at)`.
 *
 * @module
 */

/** A power-of-two ring of values, their costs and arrival times side by side. */
export class CostRing<T> {
  private readonly values: (T | undefined)[];
  /** Each slot's cost and arrival time, side by side. */
  private readonly meta: Float64Array;
  private head = 0;
  /** Number of values held. */
  count = 0;

  private constructor(capacity: number) {
    // Not pre-filled: a slot is read only after it was written (holes read as undefined).
    this.values = new Array<T | undefined>(capacity);
    this.meta = new Float64Array(2 * capacity);
  }

  /**
   * Appends a value to `ring` (`null`: none yet) and returns the ring to keep: the same one,
   * or a new one twice its size holding everything when it was full.
   */
  static push<T>(ring: CostRing<T> | null, value: T, cost: number, arrivedAt: number): CostRing<T> {
    if (ring === null || ring.count === ring.values.length) ring = CostRing.grown(ring);
    const i = (ring.head + ring.count) & (ring.values.length - 1);
    ring.values[i] = value;
    ring.meta[2 * i] = cost;
    ring.meta[2 * i + 1] = arrivedAt;
    ring.count++;
    return ring;
  }

  /** Number of values held by `ring` (`null`: none). */
  static lengthOf(ring: CostRing<unknown> | null): number {
    return ring === null ? 0 : ring.count;
  }

  /** Arrival time of the oldest value of `ring`, or `undefined` when it holds none. */
  static oldestTimeOf(ring: CostRing<unknown> | null): number | undefined {
    return ring === null || ring.count === 0 ? undefined : ring.meta[2 * ring.head + 1];
  }

  /** Cost of the oldest value; call only when non-empty. */
  oldestCost(): number {
    return this.meta[2 * this.head]!;
  }

  /** Arrival time of the oldest value; call only when non-empty. */
  oldestTime(): number {
    return this.meta[2 * this.head + 1]!;
  }

  /** Removes and returns the oldest value; call only when non-empty. */
  shift(): T {
    const i = this.head;
    const value = this.values[i] as T;
    this.values[i] = undefined;
    this.head = (i + 1) & (this.values.length - 1);
    this.count--;
    return value;
  }

  /** Removes the newest value (undoes the last `push`); call only when non-empty. */
  popNewest(): void {
    this.count--;
    this.values[(this.head + this.count) & (this.values.length - 1)] = undefined;
  }

  /** Drops everything. */
  clear(): void {
    const mask = this.values.length - 1;
    for (let n = 0, i = this.head; n < this.count; n++, i = (i + 1) & mask) this.values[i] = undefined;
    this.head = 0;
    this.count = 0;
  }

  private static grown<T>(old: CostRing<T> | null): CostRing<T> {
    if (old === null) return new CostRing<T>(8);
    const capacity = old.values.length;
    const ring = new CostRing<T>(capacity * 2);
    // The held values in order: from head to the end of the old ring, then the wrapped part.
    const head = old.head;
    const first = Math.min(old.count, capacity - head);
    ring.meta.set(old.meta.subarray(2 * head, 2 * (head + first)), 0);
    if (first < old.count) ring.meta.set(old.meta.subarray(0, 2 * (old.count - first)), 2 * first);
    const values = ring.values;
    const from = old.values;
    for (let n = 0, i = head; n < old.count; n++, i = (i + 1) & (capacity - 1)) values[n] = from[i];
    ring.count = old.count;
    return ring;
  }
}
