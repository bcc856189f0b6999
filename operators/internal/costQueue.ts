/**
 * A FIFO ring buffer of values with their byte cost and arrival time: the storage of every
 * queue operator. Push and shift are O(1) and allocate nothing (growth doubles the ring,
 * amortized); no `Array.shift`.
 *
 * @module
 */

const EMPTY: readonly unknown[] = [];
const EMPTY_F64 = new Float64Array(0);

/**
 * FIFO of `(value, cost, arrivedAt)` triples. The ring's capacity is a power of two (the
 * `values` array's length); `meta` holds each slot's cost and arrival time side by side.
 */
export class CostQueue<T> {
  private values: (T | undefined)[];
  private meta: Float64Array;
  private head = 0;
  private count = 0;
  /** Cost of the value returned by the last `shift()`. */
  lastCost = 0;

  /** Starts empty with no storage: an idle queue costs only this object. */
  constructor() {
    this.values = EMPTY as (T | undefined)[];
    this.meta = EMPTY_F64;
  }

  /** Number of values held. */
  get length(): number {
    return this.count;
  }

  /** Arrival time of the oldest value, or `undefined` when empty. */
  oldestTime(): number | undefined {
    return this.count === 0 ? undefined : this.meta[2 * this.head + 1];
  }

  /** Appends a value. */
  push(value: T, cost: number, arrivedAt: number): void {
    if (this.count === this.values.length) this.grow();
    const i = (this.head + this.count) & (this.values.length - 1);
    this.values[i] = value;
    this.meta[2 * i] = cost;
    this.meta[2 * i + 1] = arrivedAt;
    this.count++;
  }

  /** Removes and returns the oldest value (its cost in `lastCost`); call only when non-empty. */
  shift(): T {
    const i = this.head;
    const value = this.values[i] as T;
    this.values[i] = undefined;
    this.lastCost = this.meta[2 * i]!;
    this.head = (i + 1) & (this.values.length - 1);
    this.count--;
    return value;
  }

  /** Drops everything. */
  clear(): void {
    const mask = this.values.length - 1;
    for (let n = 0, i = this.head; n < this.count; n++, i = (i + 1) & mask) this.values[i] = undefined;
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const old = this.values.length;
    const capacity = old === 0 ? 8 : old * 2;
    const values = new Array<T | undefined>(capacity);
    const meta = new Float64Array(2 * capacity);
    for (let n = 0, i = this.head; n < this.count; n++, i = (i + 1) & (old - 1)) {
      values[n] = this.values[i];
      meta[2 * n] = this.meta[2 * i]!;
      meta[2 * n + 1] = this.meta[2 * i + 1]!;
    }
    this.values = values;
    this.meta = meta;
    this.head = 0;
  }
}
