/**
 * A FIFO ring buffer of values with their byte cost and arrival time: the storage of every
 * queue operator. Push and shift are O(1) and allocate nothing (growth doubles the ring,
 * amortized); no `Array.shift`.
 *
 * @module
 */

const EMPTY: readonly unknown[] = [];
const EMPTY_F64 = new Float64Array(0);

/** FIFO of `(value, cost, arrivedAt)` triples with a running byte total. */
export class CostQueue<T> {
  private values: (T | undefined)[];
  private costs: Float64Array;
  private times: Float64Array;
  private head = 0;
  private count = 0;
  private mask: number;
  /** Sum of the costs of the values held. */
  bytes = 0;
  /** Cost of the value returned by the last `shift()`. */
  lastCost = 0;

  /** Starts empty with no storage: an idle queue costs only this object. */
  constructor() {
    this.values = EMPTY as (T | undefined)[];
    this.costs = EMPTY_F64;
    this.times = EMPTY_F64;
    this.mask = -1;
  }

  /** Number of values held. */
  get length(): number {
    return this.count;
  }

  /** Arrival time of the oldest value, or `undefined` when empty. */
  oldestTime(): number | undefined {
    return this.count === 0 ? undefined : this.times[this.head];
  }

  /** Appends a value. */
  push(value: T, cost: number, arrivedAt: number): void {
    if (this.count > this.mask) this.grow();
    const i = (this.head + this.count) & this.mask;
    this.values[i] = value;
    this.costs[i] = cost;
    this.times[i] = arrivedAt;
    this.count++;
    this.bytes += cost;
  }

  /** Removes and returns the oldest value (its cost in `lastCost`); call only when non-empty. */
  shift(): T {
    const i = this.head;
    const value = this.values[i] as T;
    this.values[i] = undefined;
    this.lastCost = this.costs[i]!;
    this.bytes -= this.lastCost;
    this.head = (i + 1) & this.mask;
    this.count--;
    return value;
  }

  /** Drops everything; returns the bytes dropped. */
  clear(): number {
    const dropped = this.bytes;
    for (let n = 0, i = this.head; n < this.count; n++, i = (i + 1) & this.mask) this.values[i] = undefined;
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
    return dropped;
  }

  private grow(): void {
    const capacity = this.mask < 0 ? 8 : (this.mask + 1) * 2;
    const values = new Array<T | undefined>(capacity);
    const costs = new Float64Array(capacity);
    const times = new Float64Array(capacity);
    for (let n = 0, i = this.head; n < this.count; n++, i = (i + 1) & this.mask) {
      values[n] = this.values[i];
      costs[n] = this.costs[i]!;
      times[n] = this.times[i]!;
    }
    this.values = values;
    this.costs = costs;
    this.times = times;
    this.head = 0;
    this.mask = capacity - 1;
  }
}
