/**
 * Stream kind: an Observable pipeline through `memquota` (sometimes two in a row), its
 * consumer direct, asynchronous, hand-pumped or stalled; ended by unsubscribe, completion or error.
 *
 * @module
 */
import { type Observable, Subject, type Subscription } from 'rxjs';
import { memquota, type OnReclaim } from '../../index.js';
import { args } from '../args.js';
import { rng } from '../random.js';
import { describeError, faults, SoakFault, violation } from '../report.js';
import type { Slot } from '../trackers.js';
import { pickAccount, pickConsumer, pickCost, pickOnReclaim, sampled, schedulerOf, Stream, type Value } from './stream.js';

/** An Observable pipeline through memquota (sometimes two in a row). */
export class MemquotaStream extends Stream {
  private readonly source = new Subject<Value>();
  private readonly subscription: Subscription;
  private readonly onReclaim: OnReclaim;
  /** `--hostile`: a subscriber of a tracker signal that pushes into, or unsubscribes, this stream. */
  private signalSubscription: Subscription | null = null;
  private signalBudget = 1;

  constructor(slot: Slot) {
    const onReclaim = pickOnReclaim();
    const chained = rng.chance(0.15);
    super(chained ? 'memquota×2' : 'memquota', slot, onReclaim === 'drop-oldest' ? 'increasing' : 'consecutive');
    this.onReclaim = onReclaim;
    const consumer = pickConsumer();
    const scheduler = schedulerOf(consumer);
    const cost = pickCost(this.kind);
    let output: Observable<Value>;
    try {
      output = this.source.pipe(memquota<Value>(pickAccount(slot), { scheduler, onReclaim, cost }));
      if (chained) {
        const second = schedulerOf(pickConsumer());
        output = output.pipe(memquota<Value>(pickAccount(slot), { scheduler: second, onReclaim }));
      }
    } catch (err) {
      violation(`memquota: creating the operator threw ${describeError(err)}`);
      throw err;
    }
    sampled(this.kind, this.source);
    this.subscription = output.subscribe({
      next: (v) => this.received(v),
      error: (err: unknown) => this.failed(err),
      complete: () => this.completed(this.onReclaim),
    });
    if (args.hostile && rng.chance(0.2)) this.reactToSignals();
  }

  /**
   * Issue 13's reentrant shapes: a `pressure$` or `events$` subscriber that, from inside the
   * callback, pushes into this very stream (its value must still come in order, or the stream
   * end with the contract's error) or unsubscribes it (nothing may be delivered after that).
   */
  private reactToSignals(): void {
    const action = rng.chance(0.6) ? 'push' : 'unsubscribe';
    const react = (): void => {
      if (this.ended || this.closedBy !== null || this.signalBudget <= 0) return;
      this.signalBudget--;
      faults.add(`${this.kind}: a signal subscriber ${action === 'push' ? 'pushes into' : 'unsubscribes'} the stream`);
      if (action === 'push') this.push();
      else {
        this.closedBy = 'unsubscribe';
        this.subscription.unsubscribe();
        this.finish(`${this.kind}: unsubscribed by a signal subscriber`);
      }
    };
    this.signalSubscription = rng.chance(0.5) ? this.slot.tracker.pressure$.subscribe(react) : this.slot.tracker.events$.subscribe(react);
    // pressure$ answers at once on subscription: a reaction that ended the stream ran before
    // the subscription was stored, so finish() could not let go of it.
    if (this.ended) this.signalSubscription.unsubscribe();
  }

  override step(): void {
    this.signalBudget = 1;
  }

  override finish(how: string): void {
    super.finish(how);
    this.signalSubscription?.unsubscribe();
  }

  push(): void {
    if (this.closedBy === null) this.source.next(this.nextValue());
  }

  close(): void {
    if (this.ended || this.closedBy !== null) return;
    const how = rng.weighted<'unsubscribe' | 'complete' | 'error'>([
      [55, 'unsubscribe'],
      [35, 'complete'],
      [10, 'error'],
    ]);
    this.closedBy = how;
    if (how === 'unsubscribe') {
      this.subscription.unsubscribe();
      this.finish(`${this.kind}: unsubscribed`);
    } else if (how === 'complete') {
      this.source.complete();
    } else {
      faults.add(`${this.kind}: source errors`);
      this.source.error(new SoakFault('source errors'));
    }
  }

  /** The end of the run: whatever state it is in, let go. */
  release(): void {
    this.subscription.unsubscribe();
    this.finish(`${this.kind}: unsubscribed at the end`);
  }
}
