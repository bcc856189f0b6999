/**
 * Schedulers for lagging and stalled consumers: a scheduler whose actions run only when the
 * soak pumps it, one that never runs anything, and the event-loop waits the driver uses.
 *
 * @module
 */
import { type SchedulerAction, type SchedulerLike, Subscription } from 'rxjs';

/** A delivery action run only when the soak pumps it. */
export class PumpAction<T> extends Subscription implements SchedulerAction<T> {
  state: T | undefined;
  queued = false;
  constructor(
    private readonly owner: PumpScheduler,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
  ) {
    super();
  }
  schedule(state?: T): Subscription {
    if (this.closed) return this;
    this.state = state;
    if (!this.queued) {
      this.queued = true;
      this.owner.enqueue(this as PumpAction<unknown>);
    }
    return this;
  }
  run(): void {
    this.queued = false;
    if (!this.closed) this.work.call(this, this.state);
  }
}

/** A scheduler whose actions run only when `pump(n)` is called: a consumer that lags. */
export class PumpScheduler implements SchedulerLike {
  private pending: PumpAction<unknown>[] = [];
  private spare: PumpAction<unknown>[] = [];
  now(): number {
    return performance.now();
  }
  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, _delay?: number, state?: T): Subscription {
    const action = new PumpAction<T>(this, work);
    action.schedule(state);
    return action;
  }
  enqueue(action: PumpAction<unknown>): void {
    this.pending.push(action);
  }
  /** Runs up to `budget` pending actions (those rescheduled meanwhile wait for the next pump). */
  pump(budget: number): void {
    const batch = this.pending;
    this.pending = this.spare;
    let i = 0;
    for (; i < batch.length && budget > 0; i++) {
      if (batch[i]!.closed) continue;
      budget--;
      batch[i]!.run();
    }
    for (; i < batch.length; i++) if (!batch[i]!.closed) this.pending.push(batch[i]!);
    batch.length = 0;
    this.spare = batch;
  }
  clear(): void {
    this.pending.length = 0;
    this.spare.length = 0;
  }
}

/** A scheduler that never runs anything: the consumer never gets a value. */
export const neverScheduler: SchedulerLike = {
  now: () => performance.now(),
  schedule: () => new Subscription(),
};

export const pump = new PumpScheduler();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
