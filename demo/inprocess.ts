/**
 * The demo's flood of JS values in one process, for the crash test: channels of string
 * messages, each read by its own consumer (most of them fast, some stalled for good), fed by
 * one producer. Nothing leaves the process: the backlog of a stalled consumer is made of JS
 * strings waiting in a JS queue, on the V8 heap, where a real server's backlog lives once the
 * kernel's socket buffers are full.
 *
 * - With a tracker, each channel is a `memquotaQueue` in its own account (a child of one
 *   server account); its consumer pulls with `for await`.
 * - Without one (`'none'`), each channel is a plain unbounded queue (`PlainChannel`) with the
 *   same pull interface.
 *
 * Used by `demo/flood-child.ts`.
 *
 * @module
 */
import { MemoryReclaimedError, memquotaQueue, type Account } from '../index.js';

/** The producer's side of a channel. */
export interface ChannelSender {
  /** Whether the channel takes no more messages (reclaimed, or ended). */
  readonly closed: boolean;
  next(message: string): void;
  complete(): void;
}

/** A channel: a sender and the consumer's async iterable. */
export interface Channel {
  readonly sender: ChannelSender;
  readonly receiver: AsyncIterable<string>;
}

/**
 * An unbounded queue of strings with one async reader: the untracked baseline. An array with
 * a moving head (no `shift`), compacted when the head passes half of it.
 */
export class PlainChannel implements Channel, ChannelSender, AsyncIterable<string> {
  private items: (string | undefined)[] = [];
  private head = 0;
  private waiter: ((result: IteratorResult<string>) => void) | null = null;
  private ended = false;

  get sender(): ChannelSender {
    return this;
  }
  get receiver(): AsyncIterable<string> {
    return this;
  }
  get closed(): boolean {
    return this.ended;
  }

  next(message: string): void {
    if (this.ended) return;
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter({ value: message, done: false });
      return;
    }
    this.items.push(message);
  }

  complete(): void {
    this.ended = true;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    return {
      next: (): Promise<IteratorResult<string>> => {
        if (this.head < this.items.length) {
          const value = this.items[this.head]!;
          this.items[this.head++] = undefined;
          if (this.head > 1024 && this.head * 2 > this.items.length) {
            this.items = this.items.slice(this.head);
            this.head = 0;
          }
          return Promise.resolve({ value, done: false });
        }
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiter = resolve));
      },
      return: (): Promise<IteratorResult<string>> => {
        this.complete();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** A tracked channel: a `memquotaQueue` in `account`, with the given cost function. */
export function trackedChannel(account: Account, cost: (message: string) => number): Channel {
  return memquotaQueue<string>(account, { cost });
}

/** What the consumers saw. */
export interface ConsumerTally {
  /** Bytes read by fast consumers. */
  servedFast: number;
  /** Fast and stalled channels reclaimed (their consumer told, or their sender closed). */
  fastReclaimed: number;
  stalledReclaimed: number;
  /** Errors that are not part of the story (they fail the run). */
  unexpected: string[];
}

/** A fast consumer: reads every message as soon as it is there. */
export async function readFast(channel: Channel, tally: ConsumerTally): Promise<void> {
  try {
    for await (const message of channel.receiver) tally.servedFast += message.length;
  } catch (err) {
    if (err instanceof MemoryReclaimedError) tally.fastReclaimed++;
    else tally.unexpected.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  }
}

/**
 * Heap bytes a queued message really holds: a one-byte (ASCII) V8 string is a 16-byte header
 * plus one byte per character, and its slot in the queue (value, cost, arrival time) about 24.
 */
export function trueCost(message: string): number {
  return 40 + message.length;
}
