import { expect } from 'chai';
import { concat, NEVER, of, Subject, throwError } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, writeToStream, type Account } from '../../index.js';
import { expectBooks } from '../helpers/books.js';

/** Lets pending promise reactions run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A WritableStream whose sink's `write` returns a promise the spec settles (`settleNext`),
 * with a queue of `highWaterMark` bytes.
 */
function controlledStream(highWaterMark: number) {
  const pending: { chunk: Uint8Array; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const state = { written: 0, closed: false, aborts: 0, aborted: undefined as unknown, pending };
  const stream = new WritableStream<Uint8Array>(
    {
      write: (chunk) =>
        new Promise<void>((resolve, reject) => {
          pending.push({
            chunk,
            resolve: () => {
              state.written += chunk.byteLength;
              resolve();
            },
            reject,
          });
        }),
      close: () => {
        state.closed = true;
      },
      abort: (reason) => {
        state.aborts++;
        state.aborted = reason;
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark }),
  );
  /** Lets the sink finish its current write. */
  const settleNext = async (): Promise<void> => {
    pending.shift()!.resolve();
    await flush();
  };
  return { stream, state, settleNext };
}

function watch(subscribe: (o: { error: (e: unknown) => void; complete: () => void }) => unknown) {
  const outcome = { error: undefined as unknown, completed: false };
  subscribe({ error: (e) => (outcome.error = e), complete: () => (outcome.completed = true) });
  return outcome;
}

describe('writeToStream', () => {
  let tracker: MemoryQuotaTracker;
  let account: Account;

  beforeEach(() => {
    tracker = MemoryQuotaTracker.create({ max: 1024 * 1024 });
    account = tracker.newAccount();
  });

  it('keeps values claimed while they wait and while their write is pending, and releases each when it settles', async () => {
    const { stream, state, settleNext } = controlledStream(250);
    const source = new Subject<Uint8Array>();
    const outcome = watch((o) => source.pipe(writeToStream(stream, account)).subscribe(o));
    for (let i = 0; i < 4; i++) source.next(new Uint8Array(100));
    await flush();
    expect(tracker.used, 'one being written, the rest queued in the stream or waiting').to.equal(400);
    expectBooks(tracker);
    await settleNext();
    expect(tracker.used).to.equal(300);
    expectBooks(tracker);
    source.complete();
    await settleNext();
    await settleNext();
    expect(tracker.used).to.equal(100);
    expect(outcome.completed, 'not before the stream closed').to.equal(false);
    await settleNext();
    expect(state.written).to.equal(400);
    expect(state.closed).to.equal(true);
    expect(outcome.completed).to.equal(true);
    expectBooks(tracker, [], { participants: 0 });
  });

  it('waits for ready when desiredSize falls to 0: values stay with writeToStream, claimed', async () => {
    const { stream, state, settleNext } = controlledStream(100);
    const source = new Subject<Uint8Array>();
    watch((o) => source.pipe(writeToStream(stream, account)).subscribe(o));
    for (let i = 0; i < 5; i++) source.next(new Uint8Array(100));
    await flush();
    expect(state.pending, 'the sink got one write').to.have.length(1);
    expect(tracker.used).to.equal(500);
    expectBooks(tracker);
    for (let i = 0; i < 5; i++) await settleNext();
    expect(state.written).to.equal(500);
    expect(tracker.used).to.equal(0);
    expectBooks(tracker);
  });

  it('aborts the stream with MemoryReclaimedError when reclaimed, and errors the result', async () => {
    let time = 0;
    const t = MemoryQuotaTracker.create({ max: 1000, lowWater: 500 }, { now: () => time });
    const stuckAccount = t.newAccount();
    const freshAccount = t.newAccount();
    const { stream, state } = controlledStream(10_000);
    const outcome = watch((o) => concat(of(new Uint8Array(600)), NEVER).pipe(writeToStream(stream, stuckAccount)).subscribe(o));
    time = 10;
    const fresh = controlledStream(10_000);
    const freshOutcome = watch((o) => concat(of(new Uint8Array(450)), NEVER).pipe(writeToStream(fresh.stream, freshAccount)).subscribe(o));
    expectBooks(t);
    await t.settled();
    await flush();
    expect(outcome.error).to.be.instanceOf(MemoryReclaimedError);
    expect(t.used, 'released at once, though the stream still holds its write').to.equal(450);
    // WHATWG abort waits for the write in progress: the sink hears of it once that settles.
    expect(state.aborts).to.equal(0);
    await flush();
    state.pending[0]!.resolve();
    await flush();
    expect(state.aborted).to.equal(outcome.error);
    expect(freshOutcome.error).to.equal(undefined);
    expect(t.used).to.equal(450);
    expectBooks(t);
  });

  it('aborts the stream with a source error and errors the result with it', async () => {
    const { stream, state } = controlledStream(1000);
    const boom = new Error('source failed');
    const outcome = watch((o) => concat(of(new Uint8Array(10)), throwError(() => boom)).pipe(writeToStream(stream, account)).subscribe(o));
    expect(outcome.error).to.equal(boom);
    expectBooks(tracker, [], { participants: 0 });
    await flush();
    expect(state.aborted).to.equal(boom);
  });

  it('errors the result when a write rejects, releasing everything', async () => {
    const { stream, state } = controlledStream(1000);
    const source = new Subject<Uint8Array>();
    const outcome = watch((o) => source.pipe(writeToStream(stream, account)).subscribe(o));
    source.next(new Uint8Array(10));
    source.next(new Uint8Array(10));
    await flush();
    const full = new Error('disk full');
    state.pending[0]!.reject(full);
    await flush();
    expect(outcome.error).to.equal(full);
    expect(source.observed).to.equal(false);
    expectBooks(tracker, [], { participants: 0 });
  });

  it('releases everything and aborts the stream on unsubscribe', async () => {
    const { stream, state } = controlledStream(1000);
    const source = new Subject<Uint8Array>();
    const subscription = source.pipe(writeToStream(stream, () => account.newChild())).subscribe();
    source.next(new Uint8Array(10));
    expect(tracker.used).to.equal(10);
    subscription.unsubscribe();
    expectBooks(tracker, [], { participants: 0, accounts: 1 });
    await flush();
    state.pending[0]?.resolve(); // a write in progress when it was aborted finishes first
    await flush();
    expect(state.aborts).to.equal(1);
    expect(state.closed).to.equal(false);
    expectBooks(tracker, [], { participants: 0, accounts: 1 });
  });

  it("with onUnsubscribe: 'detach' and close: false, leaves the stream unlocked and open", async () => {
    const { stream, state, settleNext } = controlledStream(1000);
    const subscription = concat(of(new Uint8Array(10)), NEVER).pipe(writeToStream(stream, account, { onUnsubscribe: 'detach' })).subscribe();
    subscription.unsubscribe();
    expectBooks(tracker, [], { participants: 0 });
    expect(stream.locked).to.equal(false);
    await flush();
    await settleNext(); // the chunk handed over before the detach is still written
    const outcome = watch((o) => of(new Uint8Array(5)).pipe(writeToStream(stream, account, { close: false })).subscribe(o));
    await flush();
    await settleNext();
    expect(outcome.completed).to.equal(true);
    expect(state.closed).to.equal(false);
    expect(stream.locked).to.equal(false);
    expect(state.written).to.equal(15);
    expectBooks(tracker, [], { participants: 0 });
  });

  it('errors with a TypeError on a locked stream, claiming nothing', () => {
    const { stream } = controlledStream(1000);
    const writer = stream.getWriter();
    const outcome = watch((o) => of(new Uint8Array(10)).pipe(writeToStream(stream, account)).subscribe(o));
    expect(outcome.error).to.be.instanceOf(TypeError);
    expect((outcome.error as Error).message).to.match(/locked/);
    expectBooks(tracker, [], { participants: 0 });
    writer.releaseLock();
  });

  it('throws a TypeError for bad arguments; a cost that throws or returns -1 errors the result, claiming nothing', async () => {
    const { stream } = controlledStream(1000);
    const bad: [unknown, unknown, unknown, RegExp][] = [
      [null, account, undefined, /stream must be a WHATWG WritableStream/],
      [{}, account, undefined, /stream must be a WHATWG WritableStream/],
      [stream, 42, undefined, /account must be an Account/],
      [stream, account, { cost: 'bytes' }, /cost must be a function/],
      [stream, account, { close: 1 }, /close must be a boolean/],
      [stream, account, { onUnsubscribe: 'destroy' }, /onUnsubscribe must be 'abort' or 'detach'/],
    ];
    for (const [s, a, options, message] of bad) {
      expect(() => writeToStream(s as WritableStream, a as Account, options as object), String(message)).to.throw(TypeError, message);
      expectBooks(tracker, [], { participants: 0 });
    }
    expect(stream.locked).to.equal(false);
    const minusOne = watch((o) => of(new Uint8Array(10)).pipe(writeToStream(stream, account, { cost: () => -1 })).subscribe(o));
    expect(minusOne.error).to.be.instanceOf(RangeError);
    expectBooks(tracker, [], { participants: 0 });
    const boom = new Error('cost failed');
    const second = controlledStream(1000);
    const throwing = watch((o) =>
      of(new Uint8Array(10))
        .pipe(
          writeToStream(second.stream, account, {
            cost: () => {
              throw boom;
            },
          }),
        )
        .subscribe(o),
    );
    expect(throwing.error).to.equal(boom);
    expectBooks(tracker, [], { participants: 0 });
    await flush();
    expect(second.state.aborted).to.equal(boom);
  });

  it('counts a string by its UTF-8 length', () => {
    const stream = new WritableStream<string>({ write: () => new Promise<void>(() => {}) });
    of('héllo', '€', '😀').pipe(writeToStream(stream, account)).subscribe({ error: () => {} });
    expect(tracker.used).to.equal(new TextEncoder().encode('héllo€😀').byteLength);
    expectBooks(tracker);
  });
});
