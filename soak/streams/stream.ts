/**
 * What every stream kind shares: the values pushed (sized at random, numbered to check order
 * and loss), the base class that checks each delivery and each ending against the contract,
 * and the random choices of options (`onReclaim`, `cost`, account, consumer pace).
 *
 * @module
 */
import { asapScheduler, asyncScheduler, type SchedulerLike } from 'rxjs';
import { type Account, MemoryReclaimedError, MemquotaError, type OnReclaim } from '../../index.js';
import { neverScheduler, pump } from '../pump.js';
import { rng } from '../random.js';
import { counters, describeError, endings, faults, opened, SoakFault, violation } from '../report.js';
import { connection, type Slot } from '../trackers.js';

export interface Value {
  readonly seq: number;
  readonly payload: string;
}

export const TEXT = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2000);

export function makeValue(seq: number): Value {
  const length = rng.weighted([
    [70, rng.between(0, 200)],
    [25, rng.between(200, 4000)],
    [5, rng.between(4000, 60000)],
  ]);
  const start = rng.int(TEXT.length - length);
  return { seq, payload: TEXT.slice(start, start + length) };
}

/** WeakRefs to a sample of the streams' objects: all must be collectable at the end. */
export const sample: { kind: string; ref: WeakRef<object> }[] = [];
export function sampled(kind: string, object: object): void {
  if (rng.chance(0.05)) sample.push({ kind, ref: new WeakRef(object) });
}

export type Order = 'consecutive' | 'increasing' | 'any';

export abstract class Stream {
  private static nextId = 1;
  readonly id = Stream.nextId++;
  ended = false;
  /** Set when the soak itself ends the stream: what it did. */
  closedBy: 'unsubscribe' | 'complete' | 'error' | 'leave' | null = null;
  pushed = 0;
  delivered = 0;
  private expected = 0;

  constructor(
    readonly kind: string,
    readonly slot: Slot,
    readonly order: Order,
  ) {
    slot.streams.add(this);
    opened.add(kind);
  }

  abstract push(): void;
  abstract close(): void;
  /** Drops the stream without closing it (the garbage collector must free what it held). */
  forget(): void {
    this.finish(`${this.kind}: forgotten`);
  }
  /** Per-step work (hand-written participants consume, channels poll). */
  step(): void {}

  protected nextValue(): Value {
    counters.valuesPushed++;
    return makeValue(this.pushed++);
  }

  /** A value reached the consumer: check that it is allowed to, and its order. */
  protected received(value: Value): void {
    counters.valuesDelivered++;
    this.delivered++;
    if (this.ended) violation(`${this.kind} #${this.id}: value ${value.seq} after the end`);
    if (value.seq >= this.pushed) violation(`${this.kind} #${this.id}: value ${value.seq} was never pushed`);
    if (this.order === 'consecutive' && value.seq !== this.expected) {
      violation(`${this.kind} #${this.id}: got value ${value.seq}, expected ${this.expected} (lost or reordered)`);
    } else if (this.order === 'increasing' && value.seq < this.expected) {
      violation(`${this.kind} #${this.id}: got value ${value.seq} after ${this.expected - 1} (reordered)`);
    }
    this.expected = value.seq + 1;
  }

  /** The consumer saw an error. */
  protected failed(err: unknown): void {
    if (err instanceof MemoryReclaimedError) {
      this.finish(`${this.kind}: MemoryReclaimedError(${err.reason})`);
      if (err.reason === 'tracker-shutdown' && !this.slot.ephemeral) violation(`${this.kind} #${this.id}: tracker-shutdown on a tracker never shut down`);
    } else if (err instanceof SoakFault) {
      this.finish(`${this.kind}: ${err.fault}`);
    } else if (err instanceof MemquotaError && err.kind === 'TrackerShutdown' && this.slot.ephemeral) {
      this.finish(`${this.kind}: refused, TrackerShutdown`);
    } else {
      violation(`${this.kind} #${this.id}: unexpected error ${describeError(err)}`);
      this.finish(`${this.kind}: unexpected error`);
    }
  }

  /** The consumer saw completion. */
  protected completed(onReclaim: OnReclaim | undefined): void {
    if (this.closedBy === 'complete') this.finish(`${this.kind}: completed`);
    else if (onReclaim === 'complete') this.finish(`${this.kind}: completed on reclamation`);
    else {
      violation(`${this.kind} #${this.id}: completed though its source did not (closedBy ${this.closedBy})`);
      this.finish(`${this.kind}: unexpected completion`);
    }
  }

  finish(how: string): void {
    if (this.ended) return;
    this.ended = true;
    // Summarised by outcome across kinds ("memquota: unsubscribed" → "unsubscribed").
    endings.add(how.slice(how.indexOf(': ') + 2).replace(/^torn down \(.*\)$/, 'participant torn down by the tracker'));
    this.slot.streams.delete(this);
  }
}

export function pickOnReclaim(): OnReclaim {
  return rng.weighted<OnReclaim>([
    [70, 'error'],
    [15, 'complete'],
    [15, 'drop-oldest'],
  ]);
}

/** The cost option: the default estimate, a simple one, or one that throws at some value. */
export function pickCost(kind: string): ((v: Value) => number) | undefined {
  return rng.weighted<(() => ((v: Value) => number) | undefined)>([
    [60, () => undefined],
    [32, () => (v: Value) => 32 + 2 * v.payload.length],
    [
      8,
      () => {
        const at = rng.between(0, 40);
        return (v: Value) => {
          if (v.seq === at) {
            faults.add(`${kind}: cost throws`);
            throw new SoakFault('cost throws');
          }
          return 32 + v.payload.length;
        };
      },
    ],
  ])();
}

/** The account argument: the connection itself, or a factory of per-subscription children. */
export function pickAccount(slot: Slot): Account | (() => Account) {
  const conn = connection(slot);
  return rng.chance(0.5) ? conn : () => conn.newChild();
}

export type Consumer = 'direct' | 'asap' | 'async' | 'pumped' | 'stalled';
export function schedulerOf(consumer: Consumer): SchedulerLike | undefined {
  switch (consumer) {
    case 'direct':
      return undefined;
    case 'asap':
      return asapScheduler;
    case 'async':
      return asyncScheduler;
    case 'pumped':
      return pump;
    case 'stalled':
      return neverScheduler;
  }
}
export function pickConsumer(): Consumer {
  return rng.weighted<Consumer>([
    [20, 'direct'],
    [25, 'asap'],
    [15, 'async'],
    [25, 'pumped'],
    [15, 'stalled'],
  ]);
}
