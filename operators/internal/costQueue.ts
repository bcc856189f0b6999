/**
 * A FIFO ring buffer of values with their byte cost and arrival time: the storage of every
 * queue operator. Push and shift are O(1) and allocate nothing (growth doubles the ring,
 * amortized); no `Array.shift`.
 *
 * @module
 */

/** The storage of a queue that has held values: a power-of-two ring, costs and times beside. */
class Ring<T> {
  readonly values: (T | undefined)[];
  /** Each slot's cost and arrival time, side by side. */
  readonly meta: Float64Array;
  head = 0;
  count = 0;

  constructor(capacity: number) {
    this.values = new Array<T | undefined>(capacity);
    this.meta = new Float64Array(2 * capacity);
  }
}

/**
 * FIFO of `(value, cost, arrivedAt)` triples. An idle queue has no storage at all (one field);
 * the first value allocates a ring, which doubles when full and is kept while the queue lives.
 */
export class CostQueue<T> {
  private ring: Ring<T> | null = null;

  /** Number of values held. */
  get length(): number {
    const ring = this.ring;
    return ring === null ? 0 : ring.count;
  }

  /** Arrival time of the oldest value, or `undefined` when empty. */
  oldestTime(): number | undefined {
    const ring = this.ring;
    return ring === null || ring.count === 0 ? undefined : ring.meta[2 * ring.head + 1];
  }

  /** Cost of the oldest value; call only when non-empty. */
  oldestCost(): number {
    const ring = this.ring!;
    return ring.meta[2 * ring.head]!;
  }

  /** Appends a value. */
  push(value: T, cost: number, arrivedAt: number): void {
    let ring = this.ring;
    if (ring === null || ring.count === ring.values.length) ring = this.grow();
    const i = (ring.head + ring.count) & (ring.values.length - 1);
    ring.values[i] = value;
    ring.meta[2 * i] = cost;
    ring.meta[2 * i + 1] = arrivedAt;
    ring.count++;
  }

  /** Removes and returns the oldest value; call only when non-empty. */
  shift(): T {
    const ring = this.ring!;
    const i = ring.head;
    const value = ring.values[i] as T;
    ring.values[i] = undefined;
    ring.head = (i + 1) & (ring.values.length - 1);
    ring.count--;
    return value;
  }

  /** Removes the newest value (undoes the last `push`); call only when non-empty. */
  popNewest(): void {
    const ring = this.ring!;
    ring.count--;
    ring.values[(ring.head + ring.count) & (ring.values.length - 1)] = undefined;
  }

  /** Drops everything. */
  clear(): void {
    const ring = this.ring;
    if (ring === null) return;
    const mask = ring.values.length - 1;
    for (let n = 0, i = ring.head; n < ring.count; n++, i = (i + 1) & mask) ring.values[i] = undefined;
    ring.head = 0;
    ring.count = 0;
  }

  private grow(): Ring<T> {
    const old = this.ring;
    if (old === null) return (this.ring = new Ring<T>(8));
    const capacity = old.values.length;
    const ring = new Ring<T>(capacity * 2);
    for (let n = 0, i = old.head; n < old.count; n++, i = (i + 1) & (capacity - 1)) {
      ring.values[n] = old.values[i];
      ring.meta[2 * n] = old.meta[2 * i]!;
      ring.meta[2 * n + 1] = old.meta[2 * i + 1]!;
    }
    ring.count = old.count;
    return (this.ring = ring);
  }
}
