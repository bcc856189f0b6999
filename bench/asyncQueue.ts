/**
 * The B7 baseline: the async queue a careful user would write by hand. An array with a head
 * index (no `Array.shift`), one promise per pull, one waiting puller at a time, `end()` to
 * finish the iteration. It counts nothing and reclaims nothing: it is the floor that
 * `memquotaQueue`'s buffered path is held against.
 *
 * @module
 */

/** A fair, unbounded, single-consumer async queue. */
export class ArrayQueue<T> implements AsyncIterableIterator<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private waiter: ((result: IteratorResult<T>) => void) | null = null;
  private ended = false;

  /** Appends a value, or hands it to the waiting puller. */
  push(value: T): void {
    if (this.ended) return;
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter({ value, done: false });
      return;
    }
    this.items.push(value);
  }

  /** No more values: the iteration ends once the queue is empty. */
  end(): void {
    this.ended = true;
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head] as T;
      this.items[this.head++] = undefined;
      if (this.head === this.items.length) {
        this.items = [];
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
