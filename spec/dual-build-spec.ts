/**
 * Two copies of the package in one process (issue 8 item 9): the ESM build (`dist/index.js`)
 * and the CJS build (`dist/index.cjs`) accept each other's `Account` handles, because the
 * account check is a brand (`Symbol.for('rxjs-memquota.account')`), not `instanceof`.
 *
 * What is meaningful: an account stays bound to its own tracker. Another copy's operators use
 * it (the claims are booked in the account's own tracker); another copy's tracker refuses to
 * link it ("belongs to another tracker", a TypeError naming the real reason, not "not an
 * Account").
 *
 * `npm test` builds `dist/` before mocha; run alone without a build, this spec is skipped.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { Subject, Subscription, type SchedulerLike } from 'rxjs';
import type * as Package from '../index.js';

const esmPath = resolve('dist/index.js');
const cjsPath = resolve('dist/index.cjs');

/** A scheduler that never delivers: values stay queued (and claimed). */
const stalled = { now: () => 0, schedule: () => new Subscription() } as unknown as SchedulerLike;

describe('two copies of the package in one process (ESM and CJS builds)', function () {
  let esm: typeof Package;
  let cjs: typeof Package;

  before(async function () {
    if (!existsSync(esmPath) || !existsSync(cjsPath)) {
      console.log('    (skipped: dist/ is missing; run `npm run build` first — `npm test` does)');
      this.skip();
    }
    esm = (await import(pathToFileURL(esmPath).href)) as typeof Package;
    cjs = createRequire(import.meta.url)(cjsPath) as typeof Package;
    expect(esm.Account, 'two distinct copies').not.to.equal(cjs.Account);
  });

  for (const [from, to] of [
    ['ESM', 'CJS'],
    ['CJS', 'ESM'],
  ] as const) {
    it(`an ${from} Account works in the ${to} copy's memquota; claims are booked in its own tracker`, () => {
      const owner = from === 'ESM' ? esm : cjs;
      const other = from === 'ESM' ? cjs : esm;
      const tracker = owner.MemoryQuotaTracker.create({ max: 10_000 });
      const account = tracker.newAccount();
      const source = new Subject<string>();
      const errors: unknown[] = [];
      const subscription = source.pipe(other.memquota(account, { scheduler: stalled, cost: () => 100 })).subscribe({ error: (e) => errors.push(e) });
      source.next('a');
      source.next('b');
      expect(errors).to.deep.equal([]);
      expect(tracker.used).to.equal(200);
      expect(account.used).to.equal(200);
      expect(tracker.audit().problems).to.deep.equal([]);
      subscription.unsubscribe();
      expect(tracker.used).to.equal(0);
      expect(tracker.audit().problems).to.deep.equal([]);
    });

    it(`the ${to} copy's tracker refuses an ${from} account of another tracker as such, not as "not an Account"`, () => {
      const owner = from === 'ESM' ? esm : cjs;
      const other = from === 'ESM' ? cjs : esm;
      const account = owner.MemoryQuotaTracker.create({ max: 10_000 }).newAccount();
      const tracker = other.MemoryQuotaTracker.create({ max: 10_000 });
      expect(() => tracker.newAccount(account)).to.throw(TypeError, /belongs to another tracker/);
      expect(() => tracker.newAccount({ parent: account })).to.throw(TypeError, /belongs to another tracker/);
      expect(() => tracker.newAccount().addParent(account)).to.throw(TypeError, /belongs to another tracker/);
      expect(tracker.audit().problems).to.deep.equal([]);
    });
  }
});
