/**
 * B1, B1r and B2: what the operators cost on the value path, side by side with their RxJS twins.
 *
 * - B1: `memquota(account, { scheduler: asapScheduler })` against `observeOn(asapScheduler)`:
 *   values pushed into a `Subject` in bursts (10, then 1000, values emitted synchronously),
 *   each burst awaited until the subscriber has all of it. Every value is queued, claimed,
 *   delivered on the scheduler and released.
 * - B1r: the reentrant path without a scheduler against `observeOn(queueScheduler)`: the
 *   subscriber, on every tenth value, emits the next ten into the source `Subject` while still
 *   inside `next`, so they queue (claimed) and are delivered after it returns.
 * - B2: `memquotaMap(account, project)` against `concatMap(project)` (concurrency 1) and
 *   `mergeMap(project)` (concurrency `Infinity`), with `of(x)` inners (synchronous) and
 *   `Promise.resolve(x)` inners (one microtask each, values pushed in bursts of 100). Every
 *   source value is claimed until its inner completes.
 *
 * Each run subscribes a fresh pipeline and sums what arrives (checked against the expected sum,
 * so the work cannot be dropped or lost); the account is shared by all runs. A probe run per
 * row counts the claims the books saw.
 *
 * @module
 */
import {
  Subject,
  asapScheduler,
  concatMap,
  mergeMap,
  observeOn,
  of,
  queueScheduler,
  type MonoTypeOperatorFunction,
  type ObservableInput,
  type OperatorFunction,
} from 'rxjs';
import { MemoryQuotaTracker, memquota, memquotaMap, type Account } from '../index.js';
import { comparisonDetails, sideBySide, upperRow, type LateRow, type Rounds } from './harness.js';
import { noClaims, probeBooks } from './probe.js';

const TARGET_B1 = 1.0;
const TARGET_B1R = 0.8;
const TARGET_B2 = 1.0;

/** Pushes `total` values in synchronous bursts of `burst`, awaiting each burst's delivery; returns the sum. */
async function bursts(operator: MonoTypeOperatorFunction<number>, burst: number, total: number): Promise<number> {
  const source = new Subject<number>();
  let sum = 0;
  let received = 0;
  let target = 0;
  let wake: (() => void) | null = null;
  let failure: unknown = null;
  const subscription = source.pipe(operator).subscribe({
    next: (v) => {
      sum += v;
      if (++received === target && wake !== null) {
        const resume = wake;
        wake = null;
        resume();
      }
    },
    error: (err: unknown) => {
      failure = err;
      wake?.();
    },
  });
  for (let sent = 0; sent < total; ) {
    target = Math.min(total, sent + burst);
    for (; sent < target; sent++) source.next(sent);
    if (received < target && failure === null) await new Promise<void>((resolve) => (wake = resolve));
    if (failure !== null) throw failure;
  }
  subscription.unsubscribe();
  return sum;
}

/** The subscriber re-emits into the source while inside `next`: ten values every tenth one; returns the sum. */
function reentrant(operator: MonoTypeOperatorFunction<number>, total: number): number {
  const source = new Subject<number>();
  let sum = 0;
  let failure: unknown = null;
  const subscription = source.pipe(operator).subscribe({
    next: (v) => {
      sum += v;
      if (v % 10 === 0) for (let k = 1; k <= 10 && v + k < total; k++) source.next(v + k);
    },
    error: (err: unknown) => {
      failure = err;
    },
  });
  source.next(0);
  subscription.unsubscribe();
  if (failure !== null) throw failure;
  return sum;
}

/**
 * Runs `total` values through `operator` in synchronous bursts of `burst`, awaiting each
 * burst's results before the next, then completes the source and awaits completion; returns
 * the sum. Bursts keep the number of inners in flight bounded, as a real producer would: a
 * single burst of 50k Promise inners would measure RxJS's O(n) removal of a finished inner
 * from its parent subscription, 50k times over, rather than the operators' own work.
 */
async function mapped(operator: OperatorFunction<number, number>, total: number, burst: number): Promise<number> {
  const source = new Subject<number>();
  let sum = 0;
  let received = 0;
  let target = 0;
  let done = false;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  const resume = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  source.pipe(operator).subscribe({
    next: (v) => {
      sum += v;
      if (++received === target) resume();
    },
    error: (err: unknown) => {
      failure = err;
      done = true;
      resume();
    },
    complete: () => {
      done = true;
      resume();
    },
  });
  for (let sent = 0; sent < total && failure === null; ) {
    target = Math.min(total, sent + burst);
    for (; sent < target; sent++) source.next(sent);
    if (received < target && failure === null) await new Promise<void>((resolve) => (wake = resolve));
  }
  source.complete();
  if (!done) await new Promise<void>((resolve) => (wake = resolve));
  if (failure !== null) throw failure;
  return sum;
}

function checked(expected: number, run: () => number | Promise<number>): () => Promise<number> | number {
  const check = (sum: number): number => {
    if (sum !== expected) throw new Error(`bench: expected a sum of ${expected}, got ${sum}`);
    return sum;
  };
  return () => {
    const r = run();
    return r instanceof Promise ? r.then(check) : check(r);
  };
}

const sumTo = (n: number): number => (n * (n - 1)) / 2;

async function compare(
  tracker: MemoryQuotaTracker,
  id: string,
  what: string,
  limit: number,
  ops: number,
  baseline: () => unknown,
  subject: () => unknown,
  rounds: Rounds,
): Promise<LateRow> {
  const result = await sideBySide(baseline, subject, ops, rounds);
  // The probe runs later: a usage$ watcher changes the tracker's type feedback (see probe.ts).
  return async () => {
    const seen = await probeBooks(tracker, subject);
    return upperRow(
    id,
    what,
    result.ratio,
    '×',
    limit,
      { values: ops, claims: seen.claims, releases: seen.releases, peakBytes: seen.peakBytes, ...comparisonDetails(result, 'Value') },
      noClaims(seen),
    );
  };
}

/** Runs B1, B1r and B2 (timed rounds) and returns their rows, to be finished with their probes. */
export async function benchThroughput(rounds: Rounds, quick: boolean, wanted: (id: string) => boolean): Promise<LateRow[]> {
  const tracker = MemoryQuotaTracker.create({ max: 1 << 30 });
  const account: Account = tracker.newAccount();
  const rows: LateRow[] = [];
  const scale = quick ? 0.15 : 1;

  if (wanted('B1')) {
    const total = Math.round(40_000 * scale);
    for (const burst of [10, 1000]) {
      rows.push(
        await compare(
          tracker,
          'B1',
          `memquota(acc, {scheduler: asap}) vs observeOn(asap), bursts of ${burst}`,
          TARGET_B1,
          total,
          checked(sumTo(total), () => bursts(observeOn<number>(asapScheduler), burst, total)),
          checked(sumTo(total), () => bursts(memquota<number>(account, { scheduler: asapScheduler }), burst, total)),
          // The noisiest row (its ratio sits near 1): more rounds for a steadier median.
          quick ? rounds : { warmup: rounds.warmup + 1, rounds: rounds.rounds + 4 },
        ),
      );
    }
  }
  if (wanted('B1r')) {
    const total = Math.round(100_000 * scale);
    rows.push(
      await compare(
        tracker,
        'B1r',
        'memquota(acc) reentrant (queued) vs observeOn(queueScheduler)',
        TARGET_B1R,
        total,
        checked(sumTo(total), () => reentrant(observeOn<number>(queueScheduler), total)),
        checked(sumTo(total), () => reentrant(memquota<number>(account), total)),
        rounds,
      ),
    );
  }
  if (wanted('B2')) {
    const syncTotal = Math.round(100_000 * scale);
    const asyncTotal = Math.round(20_000 * scale);
    const ofInner = (x: number): ObservableInput<number> => of(x);
    const promiseInner = (x: number): ObservableInput<number> => Promise.resolve(x);
    const cases: [what: string, total: number, burst: number, baseline: OperatorFunction<number, number>, subject: () => OperatorFunction<number, number>][] = [
      ['memquotaMap(of) vs concatMap(of)', syncTotal, syncTotal, concatMap(ofInner), () => memquotaMap(account, ofInner)],
      ['memquotaMap(of, ∞) vs mergeMap(of)', syncTotal, syncTotal, mergeMap(ofInner), () => memquotaMap(account, ofInner, { concurrency: Infinity })],
      ['memquotaMap(Promise) vs concatMap(Promise), bursts of 100', asyncTotal, 100, concatMap(promiseInner), () => memquotaMap(account, promiseInner)],
      [
        'memquotaMap(Promise, ∞) vs mergeMap(Promise), bursts of 100',
        asyncTotal,
        100,
        mergeMap(promiseInner),
        () => memquotaMap(account, promiseInner, { concurrency: Infinity }),
      ],
    ];
    for (const [what, total, burst, baseline, subject] of cases) {
      rows.push(
        await compare(
          tracker,
          'B2',
          what,
          TARGET_B2,
          total,
          checked(sumTo(total), () => mapped(baseline, total, burst)),
          checked(sumTo(total), () => mapped(subject(), total, burst)),
          rounds,
        ),
      );
    }
  }

  if (tracker.used !== 0 || tracker.audit().problems.length > 0) throw new Error(`B1/B2 left the books unbalanced: ${tracker.audit().problems.join('; ')}`);
  const last = rows.length - 1;
  // The tracker lives until the last probe has run.
  return rows.map((late, i) =>
    i < last
      ? late
      : async () => {
          const row = await late();
          account.close();
          tracker.shutdown();
          return row;
        },
  );
}
