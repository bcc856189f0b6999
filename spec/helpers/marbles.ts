/**
 * Marble-test helpers shared by the operator specs: a TestScheduler that compares errors by
 * `{ name, message }` (as STYLE asks), and a tracker whose reclamation and clock run in its
 * virtual time.
 */
import { expect } from 'chai';
import { TestScheduler } from 'rxjs/testing';
import { MemoryQuotaTracker, type MemquotaConfig } from '../../index.js';

/** Errors compared by `{ name, message }`, recursively. */
export function plain(x: unknown): unknown {
  if (x instanceof Error) return { name: x.name, message: x.message };
  if (Array.isArray(x)) return x.map(plain);
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = plain(v);
    return out;
  }
  return x;
}

/** A TestScheduler whose assertions compare frames deeply, errors by `{ name, message }`. */
export function marbleScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(plain(actual)).to.deep.equal(plain(expected));
  });
}

/** A tracker whose reclamation and data ages run inside `testScheduler`'s virtual time. */
export function virtualTracker(testScheduler: TestScheduler, config: MemquotaConfig = { max: 1000, lowWater: 750 }): MemoryQuotaTracker {
  return MemoryQuotaTracker.create(config, { scheduler: testScheduler, now: () => testScheduler.now() });
}
