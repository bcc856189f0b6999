import { expect } from 'chai';
import { once } from 'node:events';
import type net from 'node:net';
import { Writable } from 'node:stream';
import { concat, NEVER, Observable, of, queueScheduler, Subject, throwError } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, type MemquotaEvent } from '../../index.js';
import { writeTo } from '../../node/index.js';
import { expectBooks, recordEvents } from '../helpers/books.js';
import { closeAll, connect, healthyWritable, listen, stuckWritable, turn, type TestClient, type TestServer } from './net.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** What a subscription of a `writeTo` result saw. */
interface Outcome {
  error?: unknown;
  completed: boolean;
  /** Resolves when it ended (completed or errored). */
  ended: Promise<void>;
}

function watch(subscribe: (observer: { error: (e: unknown) => void; complete: () => void }) => unknown): Outcome {
  let done!: () => void;
  const outcome: Outcome = { completed: false, ended: new Promise<void>((resolve) => (done = resolve)) };
  subscribe({
    error: (e) => {
      outcome.error = e;
      done();
    },
    complete: () => {
      outcome.completed = true;
      done();
    },
  });
  return outcome;
}

/** The listeners on an emitter, by event, to compare before and after a subscription. */
function listenersOf(emitter: NodeJS.EventEmitter): [string | symbol, number][] {
  return emitter.eventNames().map((name) => [name, emitter.listenerCount(name)]);
}

describe('writeTo', () => {
  describe('with real sockets on 127.0.0.1', () => {
    let server: TestServer | undefined;
    let clients: TestClient[] = [];

    afterEach(async () => {
      await closeAll(server, clients);
      server = undefined;
      clients = [];
    });

    it('reclaims a paused client and destroys its socket while a fast client reads every byte', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB, lowWater: 512 * KiB });
      const account = tracker.newAccount({ name: 'clients' });
      const events = recordEvents(tracker);
      const chunks = new Subject<Buffer>();
      const outcomes: Outcome[] = [];
      server = await listen((socket) => {
        outcomes.push(watch((o) => chunks.pipe(writeTo(socket, () => account.newChild())).subscribe(o)));
      });
      const fast = connect(server.port);
      await server.connections(1);
      const paused = connect(server.port, { paused: true });
      await server.connections(2);
      clients = [fast, paused];
      const [fastSide, pausedSide] = server.accepted as [net.Socket, net.Socket];

      // Send until the paused client is reclaimed, then a fixed tail: the kernel's socket
      // buffers absorb a machine-dependent amount first (~4 MiB on Linux defaults, more where
      // tcp_wmem is raised), so a fixed count would be too small somewhere.
      const chunk = 64 * KiB;
      const cap = 1024; // 64 MiB: far more than any kernel plus max (1 MiB) holds
      const tail = 16;
      let count = 0;
      const start = performance.now();
      let reclaimedAt: number | undefined;
      let claimedAtReclaim = 0;
      let sent = 0;
      let sentAtReclaim = 0;
      tracker.events$.subscribe((e: MemquotaEvent) => {
        if (e.type === 'victim' && reclaimedAt === undefined) {
          reclaimedAt = performance.now();
          claimedAtReclaim = e.bytes;
          sentAtReclaim = sent;
        }
      });
      for (let i = 0; reclaimedAt === undefined ? i < cap : count < tail; i++) {
        if (reclaimedAt !== undefined) count++;
        sent += chunk;
        chunks.next(Buffer.alloc(chunk, i & 0xff));
        expectBooks(tracker);
        // The producer follows the fast client (a broadcast paced by its fastest reader).
        if (!fastSide.destroyed && fastSide.writableNeedDrain) await once(fastSide, 'drain');
        await turn();
        expectBooks(tracker);
      }
      expect(reclaimedAt, `the paused client was not reclaimed after ${sent} bytes`).to.not.equal(undefined);
      chunks.complete();
      await Promise.all(outcomes.map((o) => o.ended));
      await fast.closed;
      // The paused client reads again: it gets what the kernel held, then the connection ends.
      paused.socket.on('data', (data: Buffer) => (paused.bytes += data.length));
      paused.socket.resume();
      await paused.closed;

      expect(outcomes[0]!.completed, 'fast client completed').to.equal(true);
      expect(fast.bytes, 'fast client read every byte').to.equal(sent);
      expect(fast.ended, 'fast client saw a clean end').to.equal(true);
      expect(outcomes[1]!.error).to.be.instanceOf(MemoryReclaimedError);
      expect(pausedSide.destroyed, 'paused client socket destroyed').to.equal(true);
      expect(paused.bytes, 'the paused client got only part of the stream').to.be.lessThan(sentAtReclaim);
      const victims = events.filter((e) => e.type === 'victim');
      expect(victims, 'only the paused client was a victim').to.have.length(1);
      expect(claimedAtReclaim, "the paused client held most of the quota").to.be.greaterThan(512 * KiB);
      if (process.env.NODEIO_FIGURES) {
        console.log(`      paused client: ${claimedAtReclaim} bytes claimed when chosen, reclaimed ${(reclaimedAt! - start).toFixed(1)} ms after the first chunk, ${sentAtReclaim} bytes sent to it by then, ${paused.bytes} reached it (kernel buffers)`);
      }
      expectBooks(tracker, [], { participants: 0 });
      account.close();
      expectBooks(tracker, [], { accounts: 0, participants: 0 });
    });
  });

  describe('with a writable that never calls back', () => {
    it('counts the bytes handed to it: tracker.used equals its writableLength, then what waits', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(10 * KiB);
      const source = new Subject<Buffer>();
      const outcome = watch((o) => source.pipe(writeTo(writable, account)).subscribe(o));
      for (let i = 0; i < 8; i++) {
        source.next(Buffer.alloc(1000));
        expectBooks(tracker);
      }
      await turn();
      expect(writable.writableLength).to.equal(8000);
      expect(tracker.used, 'bytes handed over and not called back').to.equal(8000);
      expect(account.used).to.equal(8000);
      // Past the writable's highWaterMark, values wait in writeTo's queue: claimed too.
      for (let i = 0; i < 5; i++) source.next(Buffer.alloc(1000));
      expectBooks(tracker);
      expect(writable.writableLength, 'handed over until write() returned false').to.equal(11000);
      expect(tracker.used).to.equal(13000);
      expect(outcome.completed).to.equal(false);
      expect(outcome.error).to.equal(undefined);
    });

    it('counts a string by its encoded length', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(10 * KiB);
      of('héllo', 'wörld€').pipe(writeTo(writable, account)).subscribe({ error: () => {} });
      expect(tracker.used).to.equal(Buffer.byteLength('héllo') + Buffer.byteLength('wörld€'));
      expectBooks(tracker);
      const latin = stuckWritable(10 * KiB);
      of('héllo').pipe(writeTo(latin, account, { encoding: 'latin1' })).subscribe({ error: () => {} });
      expect(tracker.used).to.equal(Buffer.byteLength('héllo') + Buffer.byteLength('wörld€') + 5);
      expectBooks(tracker);
    });

    it('is the oldest data: reclaimed before a fresher queue, its writable destroyed with the error', async () => {
      let time = 0;
      const tracker = MemoryQuotaTracker.create({ max: 10 * KiB, lowWater: 8 * KiB }, { now: () => time });
      const stuckAccount = tracker.newAccount();
      const freshAccount = tracker.newAccount();
      const writable = stuckWritable(64 * KiB);
      const errors: unknown[] = [];
      writable.on('error', (e) => errors.push(e));
      const outcome = watch((o) => concat(of(Buffer.alloc(4 * KiB)), NEVER).pipe(writeTo(writable, stuckAccount)).subscribe(o));
      expectBooks(tracker);
      time = 100;
      const fresh = stuckWritable(64 * KiB);
      const freshOutcome = watch((o) => concat(of(Buffer.alloc(7 * KiB)), NEVER).pipe(writeTo(fresh, freshAccount)).subscribe(o));
      expectBooks(tracker);
      await tracker.settled();
      await turn();
      expect(outcome.error).to.be.instanceOf(MemoryReclaimedError);
      expect((outcome.error as MemoryReclaimedError).reason).to.equal('reclaimed');
      expect(writable.destroyed).to.equal(true);
      expect(errors).to.deep.equal([outcome.error]);
      expect(freshOutcome.error).to.equal(undefined);
      expect(fresh.destroyed).to.equal(false);
      expect(tracker.used).to.equal(7 * KiB);
      expectBooks(tracker);
    });

    it('releases everything on unsubscribe and destroys the writable (no error event)', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(2 * KiB);
      const errors: unknown[] = [];
      writable.on('error', (e) => errors.push(e));
      const source = new Subject<Buffer>();
      const subscription = source.pipe(writeTo(writable, () => account.newChild())).subscribe();
      for (let i = 0; i < 4; i++) source.next(Buffer.alloc(1000));
      expect(tracker.used).to.equal(4000);
      expectBooks(tracker);
      subscription.unsubscribe();
      expectBooks(tracker, [], { participants: 0, accounts: 1 });
      expect(source.observed, 'source unsubscribed').to.equal(false);
      expect(writable.destroyed).to.equal(true);
      await turn();
      expect(errors).to.deep.equal([]);
      expectBooks(tracker, [], { participants: 0, accounts: 1 });
    });

    it("with onUnsubscribe: 'detach', releases everything and leaves the writable to the caller", () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(2 * KiB);
      const listeners = writable.eventNames().map((name) => [name, writable.listenerCount(name)]);
      const source = new Subject<Buffer>();
      const subscription = source.pipe(writeTo(writable, account, { onUnsubscribe: 'detach' })).subscribe();
      source.next(Buffer.alloc(1000));
      expect(tracker.used).to.equal(1000);
      expectBooks(tracker);
      subscription.unsubscribe();
      expectBooks(tracker, [], { participants: 0 });
      expect(writable.destroyed).to.equal(false);
      expect(writable.eventNames().map((name) => [name, writable.listenerCount(name)])).to.deep.equal(listeners);
      writable.destroy();
    });

    it('errors with MemoryReclaimedError (reason closed) and destroys the writable when the account is closed', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(2 * KiB);
      writable.on('error', () => {});
      const outcome = watch((o) => concat(of(Buffer.alloc(100)), NEVER).pipe(writeTo(writable, account)).subscribe(o));
      expect(tracker.used).to.equal(100);
      expectBooks(tracker);
      account.close();
      expect(outcome.error).to.be.instanceOf(MemoryReclaimedError);
      expect((outcome.error as MemoryReclaimedError).reason).to.equal('closed');
      expect(writable.destroyed).to.equal(true);
      expectBooks(tracker, [], { participants: 0, accounts: 0 });
    });
  });

  describe('unsubscription chains', () => {
    it('stops a synchronous, endless source as soon as it is reclaimed', () => {
      // queueScheduler: reclamation runs at the end of the claim that crossed max.
      const tracker = MemoryQuotaTracker.create({ max: 10 * KiB, lowWater: 5 * KiB }, { scheduler: queueScheduler });
      const account = tracker.newAccount();
      const writable = stuckWritable(1 * KiB);
      writable.on('error', () => {});
      let emitted = 0;
      const endless = new Observable<Buffer>((subscriber) => {
        while (!subscriber.closed) {
          emitted++;
          subscriber.next(Buffer.alloc(1 * KiB));
        }
      });
      const outcome = watch((o) => endless.pipe(writeTo(writable, account)).subscribe(o));
      expect(outcome.error).to.be.instanceOf(MemoryReclaimedError);
      expect(emitted, 'the source stopped at the claim that crossed max').to.equal(11);
      expect(writable.destroyed).to.equal(true);
      expectBooks(tracker, [], { participants: 0 });
    });
  });

  describe('ending', () => {
    it('ends the writable when the source completes and completes after its finish', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = healthyWritable(1000);
      const order: string[] = [];
      writable.on('finish', () => order.push('finish'));
      const listeners = listenersOf(writable);
      const outcome = watch((o) =>
        of(Buffer.alloc(600), Buffer.alloc(600), Buffer.alloc(600))
          .pipe(writeTo(writable, account))
          .subscribe({ error: o.error, complete: () => (order.push('complete'), o.complete()) }),
      );
      expect(tracker.used, 'one handed over (write returned false), two waiting').to.equal(1800);
      expectBooks(tracker);
      await outcome.ended;
      expect(order).to.deep.equal(['finish', 'complete']);
      expect(writable.received).to.equal(1800);
      expect(writable.writableFinished).to.equal(true);
      expect(listenersOf(writable), 'no listener left behind').to.deep.equal(listeners);
      expectBooks(tracker, [], { participants: 0 });
    });

    it('with end: false, leaves the writable open and completes once every write called back', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = healthyWritable(1000);
      const listeners = listenersOf(writable);
      const first = watch((o) => of(Buffer.alloc(600), Buffer.alloc(600)).pipe(writeTo(writable, account, { end: false })).subscribe(o));
      expectBooks(tracker);
      await first.ended;
      expect(first.completed).to.equal(true);
      expect(listenersOf(writable), 'no listener left behind').to.deep.equal(listeners);
      expect(writable.received).to.equal(1200);
      expect(writable.writableEnded).to.equal(false);
      expectBooks(tracker, [], { participants: 0 });
      const second = watch((o) => of(Buffer.alloc(10)).pipe(writeTo(writable, account)).subscribe(o));
      await second.ended;
      expect(second.completed).to.equal(true);
      expect(writable.received).to.equal(1210);
      expect(writable.writableFinished).to.equal(true);
      expectBooks(tracker, [], { participants: 0 });
    });

    it('destroys the writable with a source error and errors the result with it', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(10);
      const seen: unknown[] = [];
      writable.on('error', (e) => seen.push(e));
      const boom = new Error('source failed');
      const outcome = watch((o) => concat(of(Buffer.alloc(100)), throwError(() => boom)).pipe(writeTo(writable, account)).subscribe(o));
      expect(outcome.error).to.equal(boom);
      expect(writable.destroyed).to.equal(true);
      expectBooks(tracker, [], { participants: 0 });
      await turn();
      expect(seen).to.deep.equal([boom]);
    });

    it("errors the result with the writable's error and releases everything", async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const diskFull = new Error('disk full');
      const writable = new Writable({ highWaterMark: 100, write: (_c, _e, cb) => setImmediate(() => cb(diskFull)) });
      writable.on('error', () => {});
      const source = new Subject<Buffer>();
      const outcome = watch((o) => source.pipe(writeTo(writable, account)).subscribe(o));
      source.next(Buffer.alloc(200));
      source.next(Buffer.alloc(200));
      expect(tracker.used).to.equal(400);
      expectBooks(tracker);
      await outcome.ended;
      expect(outcome.error).to.equal(diskFull);
      expect(source.observed).to.equal(false);
      expectBooks(tracker, [], { participants: 0 });
    });

    it('errors with ERR_STREAM_PREMATURE_CLOSE when the writable closes before it finished', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(100);
      const source = new Subject<Buffer>();
      const outcome = watch((o) => source.pipe(writeTo(writable, account)).subscribe(o));
      source.next(Buffer.alloc(300));
      source.next(Buffer.alloc(300));
      expect(tracker.used).to.equal(600);
      expectBooks(tracker);
      writable.destroy(); // the client went away
      await outcome.ended;
      expect((outcome.error as { code?: string }).code).to.equal('ERR_STREAM_PREMATURE_CLOSE');
      expect(source.observed).to.equal(false);
      expectBooks(tracker, [], { participants: 0 });
    });

    it('errors at once on a writable already destroyed or ended, claiming nothing and leaving it alone', async () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const destroyed = stuckWritable(100);
      destroyed.destroy();
      const a = watch((o) => of(Buffer.alloc(1)).pipe(writeTo(destroyed, account)).subscribe(o));
      expect((a.error as Error).message).to.match(/already destroyed/);
      const ended = healthyWritable();
      ended.write(Buffer.alloc(10)); // still being flushed when writeTo is subscribed
      ended.end();
      const finished = once(ended, 'finish');
      const listeners = ended.eventNames().map((name) => [name, ended.listenerCount(name)]);
      const b = watch((o) => of(Buffer.alloc(1)).pipe(writeTo(ended, account)).subscribe(o));
      expect((b.error as Error).message).to.match(/already ended/);
      expectBooks(tracker, [], { participants: 0 });
      expect(ended.destroyed, 'an ended writable is not destroyed by a refused subscription').to.equal(false);
      expect(ended.eventNames().map((name) => [name, ended.listenerCount(name)])).to.deep.equal(listeners);
      await finished;
      expect(ended.received, 'its last bytes were flushed').to.equal(10);
      expectBooks(tracker, [], { participants: 0 });
    });
  });

  describe('bad arguments', () => {
    it('throws a TypeError at pipe time and changes nothing', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(100);
      const bad: [unknown, unknown, unknown, RegExp][] = [
        [null, account, undefined, /writable must be a Node stream.Writable/],
        [{ write() {} }, account, undefined, /writable must be a Node stream.Writable/],
        [writable, 'account', undefined, /account must be an Account/],
        [writable, account, 3, /options must be an object/],
        [writable, account, { cost: 3 }, /cost must be a function/],
        [writable, account, { end: 'yes' }, /end must be a boolean/],
        [writable, account, { encoding: 'klingon' }, /encoding must be a Buffer encoding/],
        [writable, account, { onUnsubscribe: 'close' }, /onUnsubscribe must be 'destroy' or 'detach'/],
      ];
      for (const [w, a, options, message] of bad) {
        expect(() => writeTo(w as Writable, a as typeof account, options as object), String(message)).to.throw(TypeError, message);
        expectBooks(tracker, [], { participants: 0 });
      }
      expect(writable.listenerCount('drain') + writable.listenerCount('error')).to.equal(0);
      expect(writable.destroyed).to.equal(false);
    });

    it('errors the result with what a throwing cost throws, claiming nothing', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(100);
      writable.on('error', () => {});
      const boom = new Error('cost failed');
      const outcome = watch((o) =>
        of(Buffer.alloc(10))
          .pipe(
            writeTo(writable, account, {
              cost: () => {
                throw boom;
              },
            }),
          )
          .subscribe(o),
      );
      expect(outcome.error).to.equal(boom);
      expect(writable.writableLength).to.equal(0);
      expectBooks(tracker, [], { participants: 0 });
    });

    it('errors the result with a RangeError when cost returns -1, claiming nothing', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const account = tracker.newAccount();
      const writable = stuckWritable(100);
      writable.on('error', () => {});
      const outcome = watch((o) => of(Buffer.alloc(10)).pipe(writeTo(writable, account, { cost: () => -1 })).subscribe(o));
      expect(outcome.error).to.be.instanceOf(RangeError);
      expect((outcome.error as Error).message).to.match(/cost returned -1/);
      expect(writable.writableLength).to.equal(0);
      expectBooks(tracker, [], { participants: 0 });
    });

    it('errors the result when the account factory returns no Account, touching nothing', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1 * MiB });
      const writable = stuckWritable(100);
      const outcome = watch((o) => of(Buffer.alloc(10)).pipe(writeTo(writable, (() => 'nope') as never)).subscribe(o));
      expect(outcome.error).to.be.instanceOf(TypeError);
      expect(writable.destroyed).to.equal(false);
      expect(writable.listenerCount('drain')).to.equal(0);
      expectBooks(tracker, [], { participants: 0 });
    });
  });
});
