/**
 * Stream kind: an Observable pipeline through `memquotaMap`, with inners that finish soon, at
 * once, never, or with an error.
 *
 * @module
 */
import { map, NEVER, type Observable, of, type OperatorFunction, Subject, type Subscription, throwError, timer } from 'rxjs';
import { memquota, memquotaMap } from '../../index.js';
import { rng } from '../random.js';
import { describeError, faults, SoakFault, violation } from '../report.js';
import type { Slot } from '../trackers.js';
import { pickAccount, pickConsumer, pickCost, sampled, schedulerOf, Stream, type Value } from './stream.js';

/** An Observable pipeline through memquotaMap, with inners that finish soon, at once or never. */
export class MemquotaMapStream extends Stream {
  private readonly source = new Subject<Value>();
  private readonly subscription: Subscription;

  constructor(slot: Slot) {
    const concurrency = rng.weighted([
      [40, 1],
      [25, 2],
      [20, 4],
      [15, Infinity],
    ]);
    const chained = rng.chance(0.15);
    super(chained ? 'memquotaMap→memquota' : 'memquotaMap', slot, concurrency === 1 ? 'consecutive' : 'any');
    const inner = rng.weighted<'timer' | 'sync' | 'mixed'>([
      [45, 'timer'],
      [20, 'sync'],
      [35, 'mixed'],
    ]);
    const kind = this.kind;
    const project = (v: Value): Observable<Value> => {
      const r = rng.next();
      if (inner === 'sync' || (inner === 'mixed' && r < 0.3)) return of(v);
      if (inner === 'mixed' && r > 0.97) return NEVER; // a stalled inner: its value stays claimed
      if (inner === 'mixed' && r > 0.965) {
        faults.add(`${kind}: inner errors`);
        return throwError(() => new SoakFault('inner errors'));
      }
      return timer(rng.between(0, 8)).pipe(map(() => v));
    };
    let output: Observable<Value>;
    try {
      output = this.source.pipe(memquotaMap(pickAccount(slot), project, { concurrency, cost: pickCost(this.kind) }) as OperatorFunction<Value, Value>);
      if (chained) output = output.pipe(memquota<Value>(pickAccount(slot), { scheduler: schedulerOf(pickConsumer()) }));
    } catch (err) {
      violation(`memquotaMap: creating the operator threw ${describeError(err)}`);
      throw err;
    }
    sampled(this.kind, this.source);
    this.subscription = output.subscribe({
      next: (v) => this.received(v),
      error: (err: unknown) => this.failed(err),
      complete: () => this.completed(undefined),
    });
  }

  push(): void {
    if (this.closedBy === null) this.source.next(this.nextValue());
  }

  close(): void {
    if (this.ended || this.closedBy !== null) return;
    const how = rng.weighted<'unsubscribe' | 'complete'>([
      [60, 'unsubscribe'],
      [40, 'complete'],
    ]);
    this.closedBy = how;
    if (how === 'unsubscribe') {
      this.subscription.unsubscribe();
      this.finish(`${this.kind}: unsubscribed`);
    } else {
      this.source.complete();
    }
  }

  release(): void {
    this.subscription.unsubscribe();
    this.finish(`${this.kind}: unsubscribed at the end`);
  }
}
