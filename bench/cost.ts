/**
 * B8: the default cost estimate, `memoryCost`, on small objects (the shape of a typical
 * message: a few scalar fields, a short string, a short array) against
 * `JSON.stringify(x).length`, the estimate a user would write by hand. 1024 distinct objects
 * are cycled so that no answer is cached.
 *
 * No quota is involved: this row measures the function every queued value pays for when the
 * operators' `cost` option is left out.
 *
 * @module
 */
import { memoryCost } from '../index.js';
import { comparisonDetails, sideBySide, upperRow, type BenchRow, type Rounds } from './harness.js';

const OBJECTS = 1024;
const TARGET = 0.5;

/** Runs B8 and returns its row. */
export async function benchCost(rounds: Rounds, quick: boolean): Promise<BenchRow> {
  const calls = quick ? 100_000 : 300_000;
  const objects = Array.from({ length: OBJECTS }, (_, i) => ({
    id: i,
    user: `user-${i}`,
    at: 1_700_000_000_000 + i,
    ok: i % 2 === 0,
    tags: ['a', `t${i & 7}`],
  }));
  const baseline = (): number => {
    let total = 0;
    for (let i = 0; i < calls; i++) total += JSON.stringify(objects[i & (OBJECTS - 1)]).length;
    return total;
  };
  const subject = (): number => {
    let total = 0;
    for (let i = 0; i < calls; i++) total += memoryCost(objects[i & (OBJECTS - 1)]);
    return total;
  };
  const result = await sideBySide(baseline, subject, calls, rounds);
  return upperRow('B8', 'memoryCost(small object) vs JSON.stringify(x).length', result.ratio, '×', TARGET, {
    calls,
    costOfFirst: memoryCost(objects[0]),
    jsonLengthOfFirst: JSON.stringify(objects[0]).length,
    ...comparisonDetails(result, 'Call'),
  });
}
