/**
 * The crash test, shortened: the demo's flood of JS values (`demo/flood-child.ts`) in child
 * processes under a 64 MiB old space (V8's limit is then about 112 MiB), a few seconds per row,
 * with half the consumers stalled (the crash test itself: a fifth, under 256 MiB).
 * Each row asserts what the process did: died of the heap, or survived with its fast consumers
 * served. The default-tracker row needs `'auto'` to fit the V8 heap; the guard rows need the
 * heap guard: all run, nothing is skipped.
 */
import { expect } from 'chai';
import { CRASH_ROWS, runChild, type CrashRow, type Outcome, type RunOptions } from '../demo/crash-rows.js';

const HEAP_MIB = 64;
const SECONDS = 4;
// Shortened: half the consumers stalled instead of a fifth, so the flood fills the heap with
// less production. V8's limit under a 64 MiB old space is about 112 MiB: 320 MiB of flood
// puts 160 MiB in the stalled channels, which cannot fit.
const run: RunOptions = { heapMiB: HEAP_MIB, seconds: SECONDS, minProducedMiB: 320, extra: ['--stalled-share', '0.5'], timeoutMs: 40_000 };

function row(name: string): CrashRow {
  const found = CRASH_ROWS.find((r) => r.name === name);
  if (found === undefined) throw new Error(`no crash-test row ${name}`);
  return found;
}

function expectDiedOfTheHeap(o: Outcome): void {
  expect(o.result, 'a RESULT line from a child expected to die').to.equal(null);
  expect(o.outcome).to.equal('died');
  expect(o.heapOutOfMemory, `stderr says "heap out of memory" (it said: ${o.fatal})`).to.equal(true);
  expect(o.exitCode !== 0 || o.signal !== null).to.equal(true);
}

function expectSurvivedServingFast(o: Outcome): void {
  expect(o.outcome, `the child died: ${o.fatal}`).to.equal('survived');
  expect(o.exitCode).to.equal(0);
  expect(o.result!.alive).to.equal(true);
  expect(o.result!.seconds).to.be.at.least(SECONDS - 0.1);
  expect(o.result!.fastServedPct).to.be.at.least(99);
}

describe('crash test (the flood in a child under --max-old-space-size=64)', function () {
  this.timeout(60_000);
  it('no quota: dies with "JavaScript heap out of memory" and no RESULT line', async function () {
    expectDiedOfTheHeap(await runChild(row('no quota').args, run));
  });

  it('an explicit 16 MiB quota: survives, fast consumers served, stalled ones reclaimed', async function () {
    const o = await runChild(['--quota', String(16 * 1024 * 1024)], run);
    expect(o.result!.producedMiB).to.be.at.least(320);
    expectSurvivedServingFast(o);
    expect(o.result!.victims).to.be.at.least(1);
    expect(o.result!.claims).to.be.at.least(1);
  });

  it("default tracker: survives, fast consumers served ('auto' fits the V8 heap)", async function () {
    const o = await runChild(row('default tracker').args, run);
    expectSurvivedServingFast(o);
    expect(o.result!.victims).to.be.at.least(1);
  });

  it('cost under-estimated 4× with the heap guard: survives (the guard reclaims on the live heap)', async function () {
    expectSurvivedServingFast(await runChild(row('cost ÷4, heap guard on').args, run));
  });

  it('cost under-estimated 4× with the heap guard off: dies of the heap', async function () {
    expectDiedOfTheHeap(await runChild(row('cost ÷4, heap guard off').args, run));
  });
});
