/**
 * Stream kind: a `memquotaQueue` channel pushed by the soak and read by a subscriber, a slow
 * `for await`, a late subscriber, or nobody.
 *
 * @module
 */
import type { Subscription } from 'rxjs';
import { memquotaQueue, type MemquotaChannel, type OnReclaim } from '../../index.js';
import { sleep, turn } from '../pump.js';
import { rng } from '../random.js';
import { describeError, faults, SoakFault, violation } from '../report.js';
import type { Slot } from '../trackers.js';
import { pickAccount, pickCost, pickOnReclaim, sampled, Stream, type Value } from './stream.js';

/** A memquotaQueue channel: pushed by the soak, read by a subscriber, a slow `for await`, or nobody. */
export class QueueStream extends Stream {
  private channel: MemquotaChannel<Value> | null;
  private subscription: Subscription | null = null;
  private readonly reader: 'observable' | 'for-await' | 'late' | 'nobody';
  private readonly onReclaim: OnReclaim;
  /** Tells a `for await` reader to leave at its next value. */
  private leaving = false;
  private stepsUntilRead: number;

  constructor(slot: Slot) {
    const onReclaim = pickOnReclaim();
    super('memquotaQueue', slot, onReclaim === 'drop-oldest' ? 'increasing' : 'consecutive');
    this.onReclaim = onReclaim;
    this.reader = rng.weighted<QueueStream['reader']>([
      [30, 'observable'],
      [35, 'for-await'],
      [15, 'late'],
      [20, 'nobody'],
    ]);
    this.stepsUntilRead = this.reader === 'late' ? rng.between(5, 200) : 0;
    this.channel = memquotaQueue<Value>(pickAccount(slot), { onReclaim, cost: pickCost(this.kind) });
    sampled(this.kind, this.channel);
    if (this.reader === 'observable') this.subscribe();
    else if (this.reader === 'for-await') void this.readSlowly(this.channel);
  }

  private subscribe(): void {
    this.subscription = this.channel!.receiver.subscribe({
      next: (v) => this.received(v),
      error: (err: unknown) => this.failed(err),
      complete: () => this.completed(this.onReclaim),
    });
    // A second consumer at the same time is refused with a TypeError, and changes nothing.
    if (rng.chance(0.05) && !this.ended) {
      let refused: unknown;
      this.channel!.receiver.subscribe({ error: (err: unknown) => (refused = err) }).unsubscribe();
      if (!(refused instanceof TypeError)) violation(`memquotaQueue #${this.id}: a second consumer was not refused (${describeError(refused)})`);
    }
  }

  private async readSlowly(channel: MemquotaChannel<Value>): Promise<void> {
    const pace = rng.weighted<'turn' | 'ms' | 'burst'>([
      [40, 'turn'],
      [30, 'ms'],
      [30, 'burst'],
    ]);
    try {
      let n = 0;
      for await (const v of channel.receiver) {
        if (this.leaving) break;
        this.received(v);
        if (pace === 'turn') await turn();
        else if (pace === 'ms') await sleep(rng.between(0, 3));
        else if (++n % 20 === 0) await sleep(5);
      }
      if (this.leaving) this.finish(`${this.kind}: reader left`);
      else this.completed(this.onReclaim);
    } catch (err) {
      this.failed(err);
    }
  }

  push(): void {
    if (this.closedBy === null && this.channel !== null) {
      const wasClosed = this.channel.sender.closed;
      this.channel.sender.next(this.nextValue());
      if (wasClosed) this.pushed--; // dropped by a closed sender, never delivered
    }
  }

  /** Whether the sender takes no more values (the channel ended or was torn down). */
  senderClosed(): boolean {
    return this.channel === null || this.channel.sender.closed;
  }

  override step(): void {
    if (this.ended || this.channel === null) return;
    if (this.reader === 'late' && this.subscription === null && --this.stepsUntilRead <= 0) this.subscribe();
    // Nobody reads: the end of the channel (reclaimed, closed, a throwing cost) shows first on
    // the sender; a consumer that comes then is told how it ended.
    if (this.subscription === null && this.reader !== 'for-await' && this.channel.sender.closed && this.closedBy === null) {
      this.subscribe();
    }
  }

  close(): void {
    if (this.ended || this.closedBy !== null || this.channel === null) return;
    const reading = this.subscription !== null || this.reader === 'for-await';
    const how = rng.weighted<'complete' | 'error' | 'leave'>([
      [45, reading ? 'complete' : 'leave'],
      [10, reading ? 'error' : 'leave'],
      [45, 'leave'],
    ]);
    this.closedBy = how;
    if (how === 'complete') this.channel.sender.complete();
    else if (how === 'error') {
      faults.add(`${this.kind}: sender errors`);
      this.channel.sender.error(new SoakFault('sender errors'));
    } else this.leave();
  }

  /** The consumer leaves (unsubscribes, breaks out of its loop) or, if there is none, the producer lets go. */
  private leave(): void {
    if (this.subscription !== null) {
      this.subscription.unsubscribe();
      this.finish(`${this.kind}: unsubscribed`);
    } else if (this.reader === 'for-await') {
      // Wakes a reader waiting on an empty channel; one busy with values leaves at the next.
      this.leaving = true;
      this.channel!.sender.complete();
    } else {
      // Nobody ever read: subscribe and leave at once (what a consumer that gives up does).
      this.channel!.receiver.subscribe({ error: () => undefined }).unsubscribe();
      this.finish(`${this.kind}: left unread`);
    }
  }

  override forget(): void {
    // An abandoned channel with values in it: only the garbage collector can free them.
    faults.add('memquotaQueue: abandoned with data');
    this.subscription?.unsubscribe();
    this.leaving = true;
    this.channel = null;
    super.forget();
  }

  release(): void {
    if (this.channel === null) return this.finish(`${this.kind}: dropped`);
    if (this.subscription !== null) this.subscription.unsubscribe();
    else if (this.reader === 'for-await') {
      this.leaving = true;
      this.channel.sender.complete();
    } else this.channel.receiver.subscribe({ error: () => undefined }).unsubscribe();
    this.finish(`${this.kind}: let go at the end`);
  }
}
