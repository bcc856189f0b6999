/**
 * Stream kind (`--hostile` only): `memquotaQueue` iterators returned from other places.
 *
 * - `'return-while-pending'`: the reader pulls with `next()` by hand; the soak calls the same
 *   iterator's `return()` from outside, usually while a `next()` is pending on an empty
 *   channel. That pending promise must settle (done, or rejected), within a few steps.
 * - `'stray-return'`: a subscriber reads the channel; the soak takes a second iterator and
 *   calls its `return()`. The subscriber must not be left hanging: it keeps getting what is
 *   pushed, or it is told how the channel ended (a terminal notification).
 *
 * @module
 */
import type { Subscription } from 'rxjs';
import { memquotaQueue, type MemquotaChannel } from '../../index.js';
import { rng } from '../random.js';
import { describeError, faults, violation } from '../report.js';
import { connection, type Slot } from '../trackers.js';
import { sampled, Stream, type Value } from './stream.js';

/** Steps a promise or a subscriber may take to learn the end before it counts as hanging. */
const PATIENCE = 30;

export class ReturnedIteratorStream extends Stream {
  private readonly channel: MemquotaChannel<Value>;
  private readonly shape: 'return-while-pending' | 'stray-return';
  private iterator: AsyncIterator<Value> | null = null;
  private pending = false;
  private subscription: Subscription | null = null;
  /** Steps since the foreign `return()`, or -1 before it. */
  private sinceReturn = -1;
  private deliveredAtReturn = 0;
  /** Values that may still arrive after return(): one resolved just before it. */
  private inFlight = 0;

  constructor(slot: Slot) {
    super('returned iterator', slot, 'consecutive');
    this.shape = rng.chance(0.5) ? 'return-while-pending' : 'stray-return';
    const conn = connection(slot);
    this.channel = memquotaQueue<Value>(() => conn.newChild(), { cost: (v) => 32 + v.payload.length });
    sampled(this.kind, this.channel);
    if (this.shape === 'return-while-pending') {
      this.iterator = this.channel.receiver[Symbol.asyncIterator]();
      this.pull();
    } else {
      this.subscription = this.channel.receiver.subscribe({
        next: (v) => this.received(v),
        error: (err: unknown) => this.failed(err),
        complete: () => this.finish(`${this.kind}: completed after a stray return()`),
      });
    }
  }

  private pull(): void {
    if (this.iterator === null || this.ended) return;
    this.pending = true;
    this.iterator.next().then(
      (result) => {
        this.pending = false;
        if (result.done) return this.finish(`${this.kind}: pending next() settled done`);
        if (this.sinceReturn >= 0) {
          // The one value already on its way when return() was called is fine; more are not.
          if (this.inFlight > 0) this.inFlight--;
          else violation(`${this.kind} #${this.id}: next() gave a value after return()`);
        }
        this.received(result.value);
        this.pull();
      },
      (err: unknown) => {
        this.pending = false;
        this.failed(err);
      },
    );
  }

  push(): void {
    if (this.closedBy === null && !this.channel.sender.closed) this.channel.sender.next(this.nextValue());
  }

  /** The foreign return(). */
  close(): void {
    if (this.ended || this.closedBy !== null) return;
    this.closedBy = 'leave';
    this.sinceReturn = 0;
    this.deliveredAtReturn = this.delivered;
    if (this.shape === 'return-while-pending') {
      this.inFlight = this.pending ? 1 : 0;
      faults.add(`${this.kind}: return() with next() ${this.pending ? 'pending' : 'idle'}`);
      void this.iterator!.return!().catch((err: unknown) => violation(`${this.kind} #${this.id}: return() rejected: ${describeError(err)}`));
      if (!this.pending) this.finish(`${this.kind}: returned while idle`);
    } else {
      faults.add(`${this.kind}: stray return() under a subscriber`);
      void this.channel.receiver[Symbol.asyncIterator]().return!();
      // The subscriber goes on: the soak keeps pushing (see step).
      this.closedBy = null;
    }
  }

  override step(): void {
    if (this.ended || this.sinceReturn < 0) return;
    this.sinceReturn++;
    // Something to deliver, so that a subscriber still attached shows it.
    if (this.shape === 'stray-return' && !this.channel.sender.closed) this.channel.sender.next(this.nextValue());
    if (this.shape === 'stray-return' && this.delivered > this.deliveredAtReturn) {
      // Still served after the stray return(): the channel was not freed under it.
      this.subscription?.unsubscribe();
      return this.finish(`${this.kind}: subscriber still served after a stray return()`);
    }
    if (this.sinceReturn > PATIENCE) {
      violation(
        this.shape === 'return-while-pending'
          ? `${this.kind} #${this.id}: a next() pending when return() was called never settled`
          : `${this.kind} #${this.id}: a stray iterator's return() left the subscriber neither served nor told the end`,
      );
      this.subscription?.unsubscribe();
      this.finish(`${this.kind}: hanging`);
    }
  }

  /** Whether the sender takes no more values (the channel ended, was freed or torn down). */
  senderClosed(): boolean {
    return this.channel.sender.closed;
  }

  release(): void {
    if (this.ended) return;
    this.subscription?.unsubscribe();
    void this.iterator?.return?.();
    this.finish(`${this.kind}: let go at the end`);
  }
}
