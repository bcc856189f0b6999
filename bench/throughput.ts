/**
 * B1 and B2: what the operators cost on the value path, side by side with their RxJS twins.
 *
 * - B1: 1M values through `memquota(account)` (no scheduler: values that can be delivered at
 *   once go straight through) against `map(x => x)`.
 * - B2: `memquotaMap(account, x => of(x))` against `concatMap(x => of(x))`, 1M values.
 *
 * Each run subscribes a fresh pipeline to a synchronous source of N numbers and sums what
 * arrives (so the work cannot be dropped); the account is shared by all runs.
 *
 * @module
 */
import { Observable, concatMap, map, of, type MonoTypeOperatorFunction, type OperatorFunction } from 'rxjs';
import { MemoryQuotaTracker, memquota, memquotaMap } from '../index.js';
import { ratioRow, sideBySide, type BenchRow } from './harness.js';

const VALUES = 1_000_000;
const TARGET_B1 = 1.5;
const TARGET_B2 = 1.0;

/** A synchronous source of `0 … n-1`. */
function numbers(n: number): Observable<number> {
  return new Observable<number>((subscriber) => {
    for (let i = 0; i < n && !subscriber.closed; i++) subscriber.next(i);
    subscriber.complete();
  });
}

/** Runs `n` values through `operator` and returns their sum. */
function pump(source: Observable<number>, operator: OperatorFunction<number, number> | MonoTypeOperatorFunction<number>): number {
  let sum = 0;
  let failure: unknown;
  source.pipe(operator).subscribe({
    next: (v) => {
      sum += v;
    },
    error: (err: unknown) => {
      failure = err;
    },
  });
  if (failure !== undefined) throw failure;
  return sum;
}

/** Runs B1 and B2 and returns their rows. */
export function benchThroughput(): BenchRow[] {
  const tracker = MemoryQuotaTracker.create({ max: 1 << 30 });
  const account = tracker.newAccount();
  const source = numbers(VALUES);
  const expected = (VALUES * (VALUES - 1)) / 2;
  const check = (sum: number): number => {
    if (sum !== expected) throw new Error(`bench: expected a sum of ${expected}, got ${sum}`);
    return sum;
  };

  const b1 = sideBySide(
    () => check(pump(source, map((x: number) => x))),
    () => check(pump(source, memquota<number>(account))),
    VALUES,
  );
  const b2 = sideBySide(
    () => check(pump(source, concatMap((x: number) => of(x)))),
    () => check(pump(source, memquotaMap(account, (x: number) => of(x)))),
    VALUES,
    { warmup: 2, rounds: 7 },
  );
  if (tracker.used !== 0 || tracker.audit().problems.length > 0) throw new Error('B1/B2 left the books unbalanced');
  account.close();
  tracker.shutdown();
  return [
    ratioRow('B1', 'memquota() (no scheduler) vs map(x => x), 1M values', b1, TARGET_B1, VALUES, 'Value'),
    ratioRow('B2', 'memquotaMap(x => of(x)) vs concatMap(x => of(x)), 1M values', b2, TARGET_B2, VALUES, 'Value'),
  ];
}
