import { expect } from 'chai';
import { Readable, Writable } from 'node:stream';
import { BehaviorSubject, Subject, share, take } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError } from '../../index.js';
import { fromReadable, writeTo } from '../../node/index.js';
import { TestParticipant, expectBooks, join } from '../helpers/books.js';
import { healthyWritable, stuckWritable, turn } from './net.js';

const KiB = 1024;

/**
 * A readable of `count` chunks of `size` bytes (chunk i filled with i), produced on demand:
 * at once, or one per turn of the event loop as a file or socket delivers them (`async`).
 */
function chunkReadable(count: number, size: number, async = false): Readable & { produced: number } {
  const produce = (): void => {
    if (r.produced === count) r.push(null);
    else r.push(Buffer.alloc(size, r.produced++ & 0xff));
  };
  const r = new Readable({
    highWaterMark: size,
    read() {
      if (async) setImmediate(produce);
      else produce();
    },
  }) as Readable & { produced: number };
  r.produced = 0;
  return r;
}

function settle<T>(observable: import('rxjs').Observable<T>): Promise<{ values: T[]; error?: unknown; completed: boolean }> {
  return new Promise((resolve) => {
    const values: T[] = [];
    observable.subscribe({
      next: (v) => values.push(v),
      error: (error) => resolve({ values, error, completed: false }),
      complete: () => resolve({ values, completed: true }),
    });
  });
}

describe('fromReadable', () => {
  it("emits a readable's chunks and completes on 'end', leaving no listener", async () => {
    const readable = chunkReadable(5, 100);
    const result = await settle(fromReadable<Buffer>(readable));
    expect(result.completed).to.equal(true);
    for (const event of ['data', 'end', 'error', 'close']) expect(readable.listenerCount(event), event).to.equal(0);
    expect(result.values.map((b) => [b.length, b[0]])).to.deep.equal([
      [100, 0],
      [100, 1],
      [100, 2],
      [100, 3],
      [100, 4],
    ]);
  });

  it("errors on the readable's 'error'", async () => {
    const boom = new Error('read failed');
    const readable = new Readable({ read: () => readable.destroy(boom) });
    const result = await settle(fromReadable(readable));
    expect(result.error).to.equal(boom);
  });

  it("errors with ERR_STREAM_PREMATURE_CLOSE when destroyed before 'end'", async () => {
    const readable = new Readable({ read() {} });
    const pending = settle(fromReadable(readable));
    readable.destroy();
    const result = await pending;
    expect((result.error as { code?: string }).code).to.equal('ERR_STREAM_PREMATURE_CLOSE');
  });

  it('pauses the readable while pressure is high and resumes when normal', async () => {
    const pressure = new BehaviorSubject<'normal' | 'high'>('high');
    const readable = chunkReadable(3, 10);
    const values: Buffer[] = [];
    let completed = false;
    fromReadable<Buffer>(readable, { pressure }).subscribe({ next: (v) => values.push(v), complete: () => (completed = true) });
    await turn();
    await turn();
    expect(readable.isPaused()).to.equal(true);
    expect(values).to.have.length(0);
    pressure.next('normal');
    await turn();
    await turn();
    expect(values).to.have.length(3);
    expect(completed).to.equal(true);
    expect(pressure.observed, 'the gate is unsubscribed at the end').to.equal(false);
  });

  it("pauses on the tracker's pressure$ as soon as a sink claims past softMax", async () => {
    const tracker = MemoryQuotaTracker.create({ max: 10 * KiB, softMax: 4 * KiB, lowWater: 2 * KiB });
    const account = tracker.newAccount();
    const readable = chunkReadable(100, 1 * KiB);
    const sink = stuckWritable(64 * KiB);
    const subscription = fromReadable<Buffer>(readable, { tracker }).pipe(writeTo(sink, account)).subscribe({ error: () => {} });
    for (let i = 0; i < 5; i++) {
      await turn();
      expectBooks(tracker);
    }
    expect(readable.isPaused()).to.equal(true);
    expect(tracker.used, 'paused right after the chunk that crossed softMax').to.equal(5 * KiB);
    subscription.unsubscribe();
    expect(readable.destroyed, 'unsubscribing destroys the readable').to.equal(true);
    expectBooks(tracker, [], { participants: 0 });
  });

  it('resumes reading when the pressure signal completes (the tracker shut down while high)', async () => {
    const tracker = MemoryQuotaTracker.create({ max: 10 * KiB, softMax: 4 * KiB, lowWater: 2 * KiB });
    const ps: TestParticipant[] = [];
    join(tracker.newAccount(), ps, 0).claim(5 * KiB); // pressure high before reading starts
    expectBooks(tracker, ps);
    const readable = chunkReadable(3, 10);
    const pending = settle(fromReadable<Buffer>(readable, { tracker }));
    await turn();
    expect(readable.isPaused()).to.equal(true);
    tracker.shutdown();
    expectBooks(tracker, [], { accounts: 0, participants: 0 });
    const result = await pending;
    expect(result.completed).to.equal(true);
    expect(result.values).to.have.length(3);
  });

  it('finishes a fromReadable → share → three writeTo pipeline with one stuck sink', async () => {
    // softMax = max: a producer gated on pressure still lets the stuck sink push used past
    // max, so the tracker reclaims it (see the README on pressure-gated producers).
    const tracker = MemoryQuotaTracker.create({ max: 64 * KiB, softMax: 64 * KiB, lowWater: 32 * KiB });
    const clients = tracker.newAccount({ name: 'clients' });
    const count = 200;
    const size = 4 * KiB;
    const readable = chunkReadable(count, size, true);
    const file$ = fromReadable<Buffer>(readable, { tracker }).pipe(share());
    const sinks: Writable[] = [healthyWritable(8 * KiB), stuckWritable(8 * KiB), healthyWritable(8 * KiB)];
    const outcomes = sinks.map((sink) => settle(file$.pipe(writeTo(sink, () => clients.newChild()))));
    // unref: should the pipeline hang, mocha's timeout fails the spec and the process still exits.
    const checking = setInterval(() => expectBooks(tracker), 1).unref();
    const results = await Promise.all(outcomes);
    clearInterval(checking);
    expect(results[0]!.completed).to.equal(true);
    expect(results[2]!.completed).to.equal(true);
    expect(results[1]!.error).to.be.instanceOf(MemoryReclaimedError);
    expect(sinks[1]!.destroyed).to.equal(true);
    expect((sinks[0] as Writable & { received: number }).received).to.equal(count * size);
    expect((sinks[2] as Writable & { received: number }).received).to.equal(count * size);
    expect(readable.readableEnded).to.equal(true);
    expectBooks(tracker, [], { participants: 0 });
  });

  it("with onUnsubscribe: 'detach', pauses the readable and leaves it open", () => {
    const readable = chunkReadable(100, 10);
    const subscription = fromReadable(readable, { onUnsubscribe: 'detach' }).pipe(take(1)).subscribe();
    subscription.unsubscribe();
    expect(readable.destroyed).to.equal(false);
    expect(readable.isPaused()).to.equal(true);
    expect(readable.listenerCount('data')).to.equal(0);
    readable.destroy();
  });

  it('throws a TypeError for bad arguments and touches nothing', () => {
    const tracker = MemoryQuotaTracker.create({ max: 10 * KiB });
    const readable = chunkReadable(1, 10);
    const bad: [unknown, unknown, RegExp][] = [
      [null, undefined, /readable must be a Node stream.Readable/],
      [{ on() {} }, undefined, /readable must be a Node stream.Readable/],
      [readable, 3, /options must be an object/],
      [readable, { tracker, pressure: new Subject() }, /tracker or pressure, not both/],
      [readable, { tracker: {} }, /tracker must be a MemoryQuotaTracker/],
      [readable, { pressure: 'high' }, /pressure must be an Observable/],
      [readable, { onUnsubscribe: 'close' }, /onUnsubscribe must be 'destroy' or 'detach'/],
    ];
    for (const [r, options, message] of bad) {
      expect(() => fromReadable(r as Readable, options as object), String(message)).to.throw(TypeError, message);
    }
    expect(readable.listenerCount('data')).to.equal(0);
    expect(readable.destroyed).to.equal(false);
    expectBooks(tracker, [], { participants: 0 });
  });
});
