/**
 * Type-level spec of `memquotaMap` (issue 8 defect 7): the result type is inferred from what
 * `project` returns as `mergeMap` infers it. `npm run typecheck` compiles this file, so a
 * declaration below that stops compiling fails the build; the `it` runs the same pipelines so
 * that the types describe real values.
 */
import { expect } from 'chai';
import { lastValueFrom, mergeMap, Observable, of, toArray } from 'rxjs';
import { MemoryQuotaTracker, memquotaMap } from '../../index.js';
import { expectBooks } from '../helpers/books.js';

/** Compile-time equality of two types: `true` only when each extends the other. */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_proof?: T): void {}

describe('memquotaMap types', () => {
  it('infers a union of inputs as mergeMap does (defect 7)', async () => {
    const tracker = MemoryQuotaTracker.create({ max: 1 << 20 });
    const account = tracker.newAccount();
    const source = of(1, -1);

    // A union of observables.
    const union: Observable<number | string> = source.pipe(memquotaMap(account, (x) => (x > 0 ? of(1) : of('a'))));
    // A Promise in one branch.
    const withPromise: Observable<number | string> = source.pipe(memquotaMap(account, (x) => (x > 0 ? Promise.resolve('p') : of(2))));
    // An array (an ObservableInput too).
    const fromArray: Observable<boolean> = source.pipe(memquotaMap(account, (x) => [x > 0]));

    const _theirs = source.pipe(mergeMap((x) => (x > 0 ? of(1) : of('a'))));
    assertType<Equal<typeof _theirs, Observable<number | string>>>();
    const _ours = source.pipe(memquotaMap(account, (x) => (x > 0 ? of(1) : of('a'))));
    assertType<Equal<typeof _ours, typeof _theirs>>();
    assertType<Equal<typeof withPromise, Observable<number | string>>>();

    expect(await lastValueFrom(union.pipe(toArray()))).to.deep.equal([1, 'a']);
    expect(await lastValueFrom(withPromise.pipe(toArray()))).to.deep.equal(['p', 2]);
    expect(await lastValueFrom(fromArray.pipe(toArray()))).to.deep.equal([true, false]);
    expect(tracker.used).to.equal(0);
    expectBooks(tracker);
  });
});
