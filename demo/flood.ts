/**
 * The demonstration's load: a real TCP fan-out server on 127.0.0.1, N client connections in
 * the same process (some of them slow: paused, or reading at a trickle), and a producer that
 * sends every connection its own stream of messages.
 *
 * With a quota, each server-side connection has its own account (a child of the server's
 * account) and a `memquotaQueue` between the producer and `socket.write`; a connection whose
 * queue holds the oldest data when the total passes `max` is reclaimed: its queue is dropped
 * and its socket destroyed. Without a quota (`quotaBytes: null`) the same messages go through
 * a plain, unbounded RxJS queue (`Subject` + `concatMap`), and the run stops itself when
 * `heapUsed` reaches a safety ceiling.
 *
 * `runFlood` is used by `demo/server.ts` (`npm start`) and by the bench (B6, through a child
 * process running the demo).
 *
 * @module
 */
import net from 'node:net';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { Observable, Subject, concatMap, type Subscription } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, memquotaMap, memquotaQueue, type Account } from '../index.js';

const MiB = 1024 * 1024;

/**
 * Heap bytes a queued message really holds: a one-byte (ASCII) V8 string is a 16-byte header
 * plus one byte per character, and its slot in the queue's ring buffer (value, cost and
 * arrival time) adds about 24. The default `memoryCost` would charge 2 bytes a character (an
 * upper bound for any string); the demo knows its messages are ASCII, so it says so.
 */
export function messageCost(message: string): number {
  return 40 + message.length;
}

/**
 * How a server connection queues its outgoing messages.
 *
 * - `'queue'` (default): `memquotaQueue`. The producer pushes into `sender`; one async loop per
 *   connection pulls from `receiver` with `for await`, writes, and waits for `'drain'` when
 *   `write()` returns false. The messages wait INSIDE the tracked queue until the socket can
 *   take them, and the loop pulls no faster than the socket drains. This is the natural fit
 *   for a socket: pull-based, one message at a time.
 * - `'map'`: `memquotaMap(account, write, { concurrency: 1 })`, the tracked twin of the
 *   untracked `concatMap(write)` used with `--no-quota`: the map's waiting buffer is the queue.
 *
 * `memquota` alone does not fit: without a scheduler it delivers each value as it arrives, and
 * a subscriber cannot refuse a value, so the waiting would happen in an untracked buffer
 * downstream of it.
 */
export type QueueKind = 'queue' | 'map';

/** What to run. */
export interface FloodOptions {
  /** The quota in bytes, or `null` for the untracked baseline (`--no-quota`). */
  readonly quotaBytes: number | null;
  /** Client connections. */
  readonly clients: number;
  /** Share of clients that are slow (half of them paused, half reading at `slowReadBytesPerSecond`). */
  readonly slowShare: number;
  /** How long the producer runs, seconds. */
  readonly durationSeconds: number;
  /** Messages per second sent to each connection. */
  readonly rate: number;
  /** Payload characters per message. */
  readonly messageSize: number;
  /** What a reading slow client takes per second, bytes. */
  readonly slowReadBytesPerSecond: number;
  /** The run stops early when `heapUsed` reaches this (the safety ceiling). */
  readonly ceilingBytes: number;
  /** How connections queue (ignored without a quota). */
  readonly via: QueueKind;
  /** Sampling period, ms. */
  readonly sampleMs: number;
  /**
   * If set, every this many ms a full GC is forced before a sample, and the heap left after it
   * (the live heap, without garbage not yet collected) is recorded. Needs `--expose-gc`.
   * Forcing collections changes the raw `heapUsed` curve, so the demo leaves it off.
   */
  readonly liveHeapEveryMs?: number;
  /** Called with every sample, for the live terminal line. */
  readonly onSample?: (sample: Sample, live: LiveState) => void;
}

/** One point of the time series. */
export interface Sample {
  /** Seconds since the producer started. */
  readonly t: number;
  /** Bytes held in the connection queues: `tracker.used`, or the untracked queues' total. */
  readonly held: number;
  /** `process.memoryUsage().heapUsed`. */
  readonly heapUsed: number;
  /** `process.memoryUsage().rss`. */
  readonly rss: number;
  /** Connections still served. */
  readonly alive: number;
  /** Connections reclaimed so far. */
  readonly killed: number;
}

/** Live figures for the terminal line (beyond the sample). */
export interface LiveState {
  /** The quota, or `null`. */
  readonly max: number | null;
  /** `lowWater`, or `null`. */
  readonly lowWater: number | null;
  /** The tracker's pressure tier. */
  readonly pressure: 'normal' | 'high' | 'off';
  /** Connections opened. */
  readonly connections: number;
}

/** Per-kind outcome of the run. */
export interface KindOutcome {
  /** Connections of this kind. */
  readonly total: number;
  /** Reclaimed by the quota. */
  readonly killed: number;
  /** Alive until the end. */
  readonly survived: number;
  /** Bytes the producer queued for them. */
  readonly queuedBytes: number;
  /** Bytes their clients read. */
  readonly receivedBytes: number;
}

/** The outcome of a run. */
export interface FloodResult {
  /** The options run. */
  readonly options: Omit<FloodOptions, 'onSample'>;
  /** Quota figures (`null` without a quota). */
  readonly max: number | null;
  readonly lowWater: number | null;
  /** Why the run ended. */
  readonly stoppedBy: 'duration' | 'ceiling';
  /** Seconds the producer ran. */
  readonly seconds: number;
  /** The time series. */
  readonly samples: readonly Sample[];
  /** Peaks over the run. */
  readonly peakHeld: number;
  readonly peakHeapUsed: number;
  readonly peakRss: number;
  /** Peak live heap (after a forced full GC), if `liveHeapEveryMs` was set; else `null`. */
  readonly peakLiveHeapUsed: number | null;
  /** `heapUsed` before the producer started (server, clients and modules loaded). */
  readonly baselineHeapUsed: number;
  /** Messages produced (over all connections) and bytes queued. */
  readonly messages: number;
  readonly queuedBytes: number;
  /** Outcome per client kind. */
  readonly fast: KindOutcome;
  readonly slow: KindOutcome;
  /** Tracker counters (zeros without a quota). */
  readonly reclaimRuns: number;
  readonly victims: number;
  readonly bytesReclaimed: number;
  /** Whether every fast client had read everything queued for it once the producer stopped. */
  readonly fastComplete: boolean;
  /** Times at which connections were reclaimed (seconds), for the chart. */
  readonly killTimes: readonly number[];
  /**
   * `heapUsed` read just after each major (mark-compact) GC of the run, observed without
   * forcing any: close to the live heap at that moment, without the garbage V8 lets pile up
   * between major GCs.
   */
  readonly majorGcs: readonly { readonly t: number; readonly heapUsed: number }[];
  /** The longest the sampler was late, ms: how long the event loop was held up at worst. */
  readonly maxStallMs: number;
}

type ClientKind = 'fast' | 'paused' | 'trickle';

/** The client end of a connection, reading at its kind's pace. */
interface Client {
  readonly kind: ClientKind;
  readonly socket: net.Socket;
  received: number;
}

/** The server end of a connection. */
interface Connection {
  kind: ClientKind | undefined;
  readonly socket: net.Socket;
  readonly account: Account | null;
  /** Hands a message to the connection's queue. */
  readonly push: (message: string) => void;
  /** Ends the queue (no more messages). */
  readonly end: () => void;
  alive: boolean;
  killed: boolean;
  queued: number;
}

/** Waits until the socket can take more (`'drain'`) or is gone (`'close'`). */
function writable(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** One write as an observable that completes when the socket can take the next one. */
function writeObservable(socket: net.Socket, message: string, onWritten: (message: string) => void): Observable<never> {
  return new Observable<never>((subscriber) => {
    onWritten(message);
    if (socket.destroyed || socket.write(message)) {
      subscriber.complete();
      return undefined;
    }
    const done = (): void => subscriber.complete();
    socket.once('drain', done);
    socket.once('close', done);
    return () => {
      socket.off('drain', done);
      socket.off('close', done);
    };
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Kinds for `clients` connections: the slow ones spread evenly, alternately paused and trickling. */
function clientKinds(clients: number, slowShare: number): ClientKind[] {
  const slow = Math.round(clients * Math.min(1, Math.max(0, slowShare)));
  const kinds: ClientKind[] = [];
  let slowSoFar = 0;
  for (let i = 0; i < clients; i++) {
    const wantSlow = Math.round(((i + 1) * slow) / clients);
    if (wantSlow > slowSoFar) {
      kinds.push(slowSoFar % 2 === 0 ? 'paused' : 'trickle');
      slowSoFar++;
    } else {
      kinds.push('fast');
    }
  }
  return kinds;
}

/** Opens a client of the given kind. */
function openClient(port: number, kind: ClientKind, trickleBytesPerSecond: number, timers: Set<NodeJS.Timeout>): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const client: Client = { kind, socket, received: 0 };
    socket.setNoDelay(true);
    // A client reset by the server (a reclaimed connection) is expected; don't crash on it.
    socket.on('error', () => socket.destroy());
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(client);
    });
    socket.once('error', reject);
    if (kind === 'paused') {
      socket.pause();
      return;
    }
    if (kind === 'fast') {
      socket.on('data', (chunk: Buffer) => {
        client.received += chunk.length;
      });
      return;
    }
    // Trickle: a token bucket of one second; pause when over budget, resume when it refills.
    const started = performance.now();
    socket.on('data', (chunk: Buffer) => {
      client.received += chunk.length;
      const allowed = ((performance.now() - started) / 1000) * trickleBytesPerSecond;
      if (client.received > allowed) {
        socket.pause();
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!socket.destroyed) socket.resume();
        }, Math.min(1000, ((client.received - allowed) / trickleBytesPerSecond) * 1000));
        timers.add(timer);
      }
    });
  });
}

/**
 * Runs the flood: starts the server and the clients, produces for `durationSeconds` (or until
 * the ceiling), lets fast clients catch up, closes every socket and the server, and returns
 * the figures. Leaves no handle open.
 */
export async function runFlood(options: FloodOptions): Promise<FloodResult> {
  const { quotaBytes, clients, slowShare, durationSeconds, rate, messageSize, ceilingBytes, via, sampleMs } = options;
  const tracker = quotaBytes === null ? null : MemoryQuotaTracker.create({ max: quotaBytes });
  const serverAccount = tracker?.newAccount() ?? null;
  let pressure: 'normal' | 'high' | 'off' = tracker ? 'normal' : 'off';
  const pressureSub: Subscription | undefined = tracker?.pressure$.subscribe((p) => (pressure = p));

  const connections: Connection[] = [];
  const byPort = new Map<number, Connection>();
  const killTimes: number[] = [];
  let untrackedHeld = 0;
  let killed = 0;
  let startedAt = performance.now();
  const elapsed = (): number => (performance.now() - startedAt) / 1000;

  const kill = (conn: Connection): void => {
    if (!conn.alive) return;
    conn.alive = false;
    conn.killed = true;
    killed++;
    killTimes.push(elapsed());
    conn.socket.destroy();
  };

  /** A connection record; `push` and `end` say how messages reach its socket. */
  const connection = (socket: net.Socket, account: Account | null, push: (message: string) => void, end: () => void): Connection => ({
    kind: undefined,
    socket,
    account,
    push,
    end,
    alive: true,
    killed: false,
    queued: 0,
  });

  /** The tracked connection: an account, a memquota queue, a loop writing at the socket's pace. */
  const trackedConnection = (socket: net.Socket): Connection => {
    const account = serverAccount!.newChild();
    let conn: Connection;
    // Reclamation must reach a connection even while its writer waits for a 'drain' that a
    // paused client will never send: destroy the socket as soon as the account collapses.
    account.collapsed$.subscribe((reason) => {
      if (reason === 'reclaimed') kill(conn);
    });
    if (via === 'map') {
      const outgoing = new Subject<string>();
      const sub = outgoing
        .pipe(memquotaMap(account, (message: string) => writeObservable(socket, message, noop), { cost: messageCost }))
        .subscribe({
          error: (err: unknown) => {
            if (err instanceof MemoryReclaimedError) kill(conn);
            else socket.destroy();
          },
        });
      conn = connection(
        socket,
        account,
        (message) => outgoing.next(message),
        () => {
          outgoing.complete();
          sub.unsubscribe();
        },
      );
      return conn;
    }
    const { sender, receiver } = memquotaQueue<string>(account, { cost: messageCost });
    conn = connection(
      socket,
      account,
      (message) => {
        if (!sender.closed) sender.next(message);
      },
      () => sender.complete(),
    );
    void (async () => {
      try {
        for await (const message of receiver) {
          if (socket.destroyed) break;
          if (!socket.write(message)) await writable(socket);
        }
      } catch (err) {
        if (err instanceof MemoryReclaimedError) {
          kill(conn);
        } else {
          // Not part of the demo's story: say so, drop the connection, and fail the exit code.
          console.error('demo: a connection writer failed:', err);
          socket.destroy();
          process.exitCode = 1;
        }
      }
    })();
    return conn;
  };

  /** The untracked baseline: `Subject` + `concatMap(write)`, an unbounded buffer. */
  const plainConnection = (socket: net.Socket): Connection => {
    const outgoing = new Subject<string>();
    const written = (message: string): void => {
      untrackedHeld -= messageCost(message);
    };
    const sub = outgoing.pipe(concatMap((message) => writeObservable(socket, message, written))).subscribe({ error: () => socket.destroy() });
    return connection(
      socket,
      null,
      (message) => {
        untrackedHeld += messageCost(message);
        outgoing.next(message);
      },
      () => {
        outgoing.complete();
        sub.unsubscribe();
      },
    );
  };

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    const conn = tracker ? trackedConnection(socket) : plainConnection(socket);
    socket.once('close', () => {
      conn.alive = false;
      conn.end();
      conn.account?.close();
    });
    connections.push(conn);
    byPort.set(socket.remotePort!, conn);
  });
  const port = await listen(server);

  const timers = new Set<NodeJS.Timeout>();
  const kinds = clientKinds(clients, slowShare);
  const clientList: Client[] = [];
  for (let i = 0; i < kinds.length; i += 50) {
    clientList.push(...(await Promise.all(kinds.slice(i, i + 50).map((kind) => openClient(port, kind, options.slowReadBytesPerSecond, timers)))));
  }
  while (connections.length < clients) await sleep(5);
  for (const client of clientList) {
    const conn = byPort.get(client.socket.localPort!);
    if (conn) conn.kind = client.kind;
  }

  const payload = 'x'.repeat(messageSize);
  const samples: Sample[] = [];
  let peakHeld = 0;
  let peakHeapUsed = 0;
  let peakRss = 0;
  let peakLiveHeapUsed: number | null = null;
  let lastLive = -Infinity;
  let messages = 0;
  let queuedBytes = 0;
  let stoppedBy: 'duration' | 'ceiling' = 'duration';
  let maxStallMs = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const baselineHeapUsed = process.memoryUsage().heapUsed;
  const majorGcs: { t: number; heapUsed: number }[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as { detail?: unknown }).detail as { kind?: number } | undefined;
      if (detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) majorGcs.push({ t: elapsed(), heapUsed: process.memoryUsage().heapUsed });
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });

  const held = (): number => (tracker ? tracker.used : untrackedHeld);
  const live = (): LiveState => ({
    max: tracker?.max ?? null,
    lowWater: tracker?.lowWater ?? null,
    pressure,
    connections: connections.length,
  });
  const takeSample = (): Sample => {
    if (options.liveHeapEveryMs !== undefined && gc && performance.now() - lastLive >= options.liveHeapEveryMs) {
      lastLive = performance.now();
      gc();
      peakLiveHeapUsed = Math.max(peakLiveHeapUsed ?? 0, process.memoryUsage().heapUsed);
    }
    const mem = process.memoryUsage();
    const sample: Sample = {
      t: elapsed(),
      held: held(),
      heapUsed: mem.heapUsed,
      rss: mem.rss,
      alive: connections.length - killed,
      killed,
    };
    peakHeld = Math.max(peakHeld, sample.held);
    peakHeapUsed = Math.max(peakHeapUsed, sample.heapUsed);
    peakRss = Math.max(peakRss, sample.rss);
    samples.push(sample);
    options.onSample?.(sample, live());
    return sample;
  };

  // The producer: every tick, each live connection gets its share of `rate` messages, each its
  // own string (JSON.stringify builds a fresh flat string: real memory per connection).
  const TICK_MS = 10;
  const MAX_CATCH_UP_MS = 50;
  let owed = 0;
  let seq = 0;
  startedAt = performance.now();
  let lastTick = startedAt;
  await new Promise<void>((resolve) => {
    const producer = setInterval(() => {
      const now = performance.now();
      // A late tick (GC pause, busy loop) makes up for at most MAX_CATCH_UP_MS: a burst of
      // seconds' worth of messages at once would give every queue, fast ones included, a
      // block of equally old data, which is not the load this demo is about.
      owed = Math.min(owed + ((now - lastTick) / 1000) * rate, (MAX_CATCH_UP_MS / 1000) * rate + 1);
      lastTick = now;
      const batch = Math.floor(owed);
      owed -= batch;
      for (let b = 0; b < batch; b++) {
        seq++;
        for (let c = 0; c < connections.length; c++) {
          const conn = connections[c]!;
          if (!conn.alive) continue;
          const message = JSON.stringify({ c, seq, t: now, payload }) + '\n';
          conn.queued += message.length;
          queuedBytes += message.length;
          messages++;
          conn.push(message);
        }
      }
    }, TICK_MS);
    let lastSampleAt = performance.now();
    const sampler = setInterval(() => {
      const at = performance.now();
      maxStallMs = Math.max(maxStallMs, at - lastSampleAt - sampleMs);
      lastSampleAt = at;
      const sample = takeSample();
      const over = sample.heapUsed >= ceilingBytes;
      if (over || sample.t >= durationSeconds) {
        if (over) stoppedBy = 'ceiling';
        clearInterval(producer);
        clearInterval(sampler);
        resolve();
      }
    }, sampleMs);
  });
  const seconds = elapsed();
  gcObserver.disconnect();

  // Let the fast clients catch up (the producer has stopped), then check they got everything.
  let fastComplete = false;
  const catchUpUntil = performance.now() + 3000;
  const fastClients = clientList.filter((c) => c.kind === 'fast');
  const queuedFor = (client: Client): number => byPort.get(client.socket.localPort!)?.queued ?? NaN;
  while (performance.now() < catchUpUntil) {
    if (fastClients.every((c) => c.received >= queuedFor(c))) {
      fastComplete = true;
      break;
    }
    await sleep(20);
  }
  takeSample();

  const outcome = (match: (kind: ClientKind) => boolean): KindOutcome => {
    const own = connections.filter((c) => c.kind !== undefined && match(c.kind));
    const ownClients = clientList.filter((c) => match(c.kind));
    return {
      total: own.length,
      killed: own.filter((c) => c.killed).length,
      survived: own.filter((c) => !c.killed).length,
      queuedBytes: own.reduce((sum, c) => sum + c.queued, 0),
      receivedBytes: ownClients.reduce((sum, c) => sum + c.received, 0),
    };
  };
  const fast = outcome((k) => k === 'fast');
  const slow = outcome((k) => k !== 'fast');
  const stats = tracker?.stats;
  const max = tracker?.max ?? null;
  const lowWater = tracker?.lowWater ?? null;

  // Close everything: queues, server sockets, client sockets, the server, timers, the tracker.
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  for (const conn of connections) {
    conn.alive = false;
    conn.end();
    conn.socket.destroy();
    conn.account?.close();
  }
  for (const client of clientList) client.socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  pressureSub?.unsubscribe();
  serverAccount?.close();
  tracker?.shutdown();

  const { onSample: _onSample, ...plainOptions } = options;
  return {
    options: plainOptions,
    max,
    lowWater,
    stoppedBy,
    seconds,
    samples,
    peakHeld,
    peakHeapUsed,
    peakRss,
    peakLiveHeapUsed,
    baselineHeapUsed,
    messages,
    queuedBytes,
    fast,
    slow,
    reclaimRuns: stats?.reclaimRuns ?? 0,
    victims: stats?.victims ?? 0,
    bytesReclaimed: stats?.bytesReclaimed ?? 0,
    fastComplete,
    killTimes,
    majorGcs,
    maxStallMs,
  };
}

function noop(): void {}

/** Default flood options (the demo's defaults). */
export const DEFAULT_FLOOD: Omit<FloodOptions, 'onSample'> = {
  quotaBytes: 64 * MiB,
  clients: 200,
  slowShare: 0.2,
  durationSeconds: 20,
  rate: 50,
  messageSize: 16 * 1024,
  slowReadBytesPerSecond: 32 * 1024,
  ceilingBytes: 512 * MiB,
  via: 'queue',
  sampleMs: 100,
};
