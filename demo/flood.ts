/**
 * The demonstration's load: a real TCP fan-out server on 127.0.0.1, N client connections in
 * the same process (some of them slow: paused, or reading at a trickle), and a producer that
 * sends every connection its own stream of messages.
 *
 * With a quota, each server-side connection has its own account (a child of the server's
 * account) and a tracked queue between the producer and `socket.write` (`demo/sink.ts`); a
 * connection whose queue holds the oldest data when the total passes `max` is reclaimed: its
 * queue is dropped and its socket destroyed. Without a quota (`quotaBytes: null`) the same
 * messages go through a plain, unbounded RxJS queue (`Subject` + `concatMap`), and the run
 * stops itself when `heapUsed` reaches a safety ceiling.
 *
 * The parts, by role: `flood/server.ts` (the server and its connections' write paths),
 * `flood/clients.ts` (the clients and their reading paces), `flood/producer.ts` (the load),
 * `flood/sampler.ts` (the time series), and `runFlood` below, which runs them in order and
 * sums the outcome up.
 *
 * `runFlood` is used by `demo/server.ts` (`npm start`) and by the bench (B6, through a child
 * process running the demo).
 *
 * @module
 */
import { MemoryQuotaTracker } from '../index.js';
import { clientKinds, openClients, type Client, type ClientKind } from './flood/clients.js';
import { startProducer } from './flood/producer.js';
import { Sampler, type Sample } from './flood/sampler.js';

import { kernelBytes, startServer, type Connection } from './flood/server.js';
import type { QueueKind } from './sink.js';

export { messageCost } from './flood/server.js';
export type { QueueKind } from './sink.js';
export type { Sample } from './flood/sampler.js';

const MiB = 1024 * 1024;

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
  /**
   * If set, production goes on past `durationSeconds` until this many bytes were produced, for
   * at most `maxDurationSeconds` in all (the demo's baseline goes through the same volume as
   * the quota run before it, when a busy machine produces less than nominal).
   */
  readonly minProducedBytes?: number;
  readonly maxDurationSeconds?: number;
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
  /** The load: nominal (rate × message bytes × clients) and produced, bytes per second. */
  readonly nominalBytesPerSecond: number;
  readonly producedBytesPerSecond: number;
  /**
   * Message batches produced / owed at the nominal rate (1 = kept up). Below 0.9 the machine
   * was too busy and the load was lighter than nominal.
   */
  readonly producerKeptUp: number;
  /** The kernel's socket buffers: see {@link KernelFigures}. */
  readonly kernel: KernelFigures;
}

/**
 * What the kernel's socket buffers absorbed, outside any JS queue and so outside the tracker.
 * Per connection, bytes in the kernel = `socket.bytesWritten − socket.writableLength` (what the
 * server's socket passed to the kernel) `− client bytes read`: the server's send buffer plus
 * the client's receive buffer, both on loopback in this process.
 */
export interface KernelFigures {
  /** Peak of the sum over live connections. */
  readonly peak: number;
  /**
   * The sum over all connections (a reclaimed one at its reclamation) at the first
   * reclamation: what the kernel had swallowed before the tracker first acted (`null` if
   * nothing was reclaimed).
   */
  readonly atFirstReclaim: number | null;
  /**
   * The sum over live connections when the tracker first held 1 MiB: what the kernel had
   * swallowed before the tracker saw any backlog (`null` without a tracker, or if it never did).
   */
  readonly atFirstHeld: number | null;
  /** Mean per slow connection at its end (reclamation, or the end of the run). */
  readonly perSlowConnection: number;
}


/**
 * Runs the flood: starts the server and the clients, produces for `durationSeconds` (or until
 * the ceiling), lets fast clients catch up, closes every socket and the server, and returns
 * the figures. Leaves no handle open.
 */
export async function runFlood(options: FloodOptions): Promise<FloodResult> {
  const { quotaBytes, clients, slowShare, durationSeconds, rate, messageSize, ceilingBytes, via, sampleMs } = options;

  // The quota (or none).
  const tracker = quotaBytes === null ? null : MemoryQuotaTracker.create({ max: quotaBytes });
  let pressure: LiveState['pressure'] = tracker ? 'normal' : 'off';
  const pressureSub = tracker?.pressure$.subscribe((p) => (pressure = p));
  let startedAt = performance.now();
  const clock = (): number => (performance.now() - startedAt) / 1000;

  // The server, then the clients, matched to their server-side connections.
  const clientOf = new Map<Connection, Client>();
  const receivedBy = (conn: Connection): number => clientOf.get(conn)?.received ?? 0;
  const server = await startServer({ tracker, via, clock, receivedBy });
  const { connections } = server;
  const kinds = clientKinds(clients, slowShare);
  const clientSet = await openClients(server.port, kinds, options.slowReadBytesPerSecond);
  while (connections.length < clients) await sleep(5);
  for (const client of clientSet.list) {
    const conn = server.byPort.get(client.socket.localPort!);
    if (conn) {
      conn.kind = client.kind;
      clientOf.set(conn, client);
    }
  }

  // What the kernel holds, now (live connections) and at the first reclamation (all of them).
  const kernelNow = (): number => {
    let sum = 0;
    for (const conn of connections) if (conn.alive) sum += kernelBytes(conn, receivedBy(conn));
    return sum;
  };
  let kernelAtFirstReclaim: number | null = null;
  let kernelAtFirstHeld: number | null = null;
  const firstReclaim = tracker?.events$.subscribe((e) => {
    if (e.type !== 'collapse' || e.reason !== 'reclaimed' || kernelAtFirstReclaim !== null) return;
    // The event comes before the socket is destroyed; connections already killed keep their figure.
    kernelAtFirstReclaim = connections.reduce((sum, c) => sum + (c.kernelAtKill ?? (c.socket.destroyed ? 0 : kernelBytes(c, receivedBy(c)))), 0);
  });

  // The sampler.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const baselineHeapUsed = process.memoryUsage().heapUsed;
  startedAt = performance.now();
  const sampler = new Sampler(
    {
      clock,
      held: () => (tracker ? tracker.used : server.untrackedHeld()),
      kernel: kernelNow,
      alive: () => connections.length - server.killTimes.length,
      killed: () => server.killTimes.length,
    },
    options.liveHeapEveryMs,
  );
  const live = (): LiveState => ({ max: tracker?.max ?? null, lowWater: tracker?.lowWater ?? null, pressure, connections: connections.length });

  // The producer, until the duration or the ceiling.
  const producer = startProducer(connections, rate, messageSize);
  let stoppedBy: FloodResult['stoppedBy'] = 'duration';
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const sample = sampler.take(sampleMs);
      if (tracker !== null && kernelAtFirstHeld === null && sample.held >= MiB) kernelAtFirstHeld = sample.kernel;
      options.onSample?.(sample, live());
      const over = sample.heapUsed >= ceilingBytes;
      const volumeDone = producer.bytes >= (options.minProducedBytes ?? 0) || sample.t >= (options.maxDurationSeconds ?? durationSeconds);
      if (over || (sample.t >= durationSeconds && volumeDone)) {
        if (over) stoppedBy = 'ceiling';
        producer.stop();
        clearInterval(timer);
        resolve();
      }
    }, sampleMs);
  });
  const seconds = clock();
  sampler.stop();

  // Let the fast clients catch up (the producer has stopped), then check they got everything.
  let fastComplete = false;
  const catchUpUntil = performance.now() + 3000;
  const fastClients = clientSet.list.filter((c) => c.kind === 'fast');
  const queuedFor = (client: Client): number => server.byPort.get(client.socket.localPort!)?.queued ?? NaN;
  while (performance.now() < catchUpUntil) {
    if (fastClients.every((c) => c.received >= queuedFor(c))) {
      fastComplete = true;
      break;
    }
    await sleep(20);
  }
  sampler.take();

  // The outcome.
  const outcome = (match: (kind: ClientKind) => boolean): KindOutcome => {
    const own = connections.filter((c) => c.kind !== undefined && match(c.kind));
    return {
      total: own.length,
      killed: own.filter((c) => c.killed).length,
      survived: own.filter((c) => !c.killed).length,
      queuedBytes: own.reduce((sum, c) => sum + c.queued, 0),
      receivedBytes: own.reduce((sum, c) => sum + receivedBy(c), 0),
    };
  };
  const slowConnections = connections.filter((c) => c.kind !== undefined && c.kind !== 'fast');
  const perSlow =
    slowConnections.reduce((sum, c) => sum + (c.kernelAtKill ?? (c.socket.destroyed ? 0 : kernelBytes(c, receivedBy(c)))), 0) / Math.max(1, slowConnections.length);
  const stats = tracker?.stats;
  const messageBytes = JSON.stringify({ c: 0, seq: 0, t: performance.now(), payload: 'x'.repeat(messageSize) }).length + 1;
  const result: FloodResult = {
    options: withoutCallback(options),
    max: tracker?.max ?? null,
    lowWater: tracker?.lowWater ?? null,
    stoppedBy,
    seconds,
    samples: sampler.samples,
    peakHeld: sampler.peakHeld,
    peakHeapUsed: sampler.peakHeapUsed,
    peakRss: sampler.peakRss,
    peakLiveHeapUsed: sampler.peakLiveHeapUsed,
    baselineHeapUsed,
    messages: producer.messages,
    queuedBytes: producer.bytes,
    fast: outcome((k) => k === 'fast'),
    slow: outcome((k) => k !== 'fast'),
    reclaimRuns: stats?.reclaimRuns ?? 0,
    victims: stats?.victims ?? 0,
    bytesReclaimed: stats?.bytesReclaimed ?? 0,
    fastComplete,
    killTimes: server.killTimes,
    majorGcs: sampler.majorGcs,
    maxStallMs: sampler.maxStallMs,
    nominalBytesPerSecond: rate * messageBytes * clients,
    producedBytesPerSecond: producer.bytes / Math.max(seconds, 1e-3),
    producerKeptUp: producer.batches / Math.max(1, producer.owedBatches()),
    kernel: { peak: sampler.peakKernel, atFirstHeld: kernelAtFirstHeld, atFirstReclaim: kernelAtFirstReclaim, perSlowConnection: perSlow },
  };

  // Close everything: queues, server sockets, client sockets, the server, timers, the tracker.
  clientSet.close();
  await server.close();
  firstReclaim?.unsubscribe();
  pressureSub?.unsubscribe();
  tracker?.shutdown();
  return result;
}

function withoutCallback(options: FloodOptions): Omit<FloodOptions, 'onSample'> {
  const { onSample: _onSample, ...plain } = options;
  return plain;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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
