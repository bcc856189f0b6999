/**
 * The flood's server: a TCP server on 127.0.0.1 whose every connection gets a write path
 * (`demo/sink.ts`): with a tracker, in its own account (a child of the server's account),
 * reclaimed as a whole (its socket destroyed); without one, a plain unbounded queue.
 *
 * @module
 */
import net from 'node:net';
import type { Account, MemoryQuotaTracker } from '../../index.js';
import { openSink, type QueueKind, type Sink } from '../sink.js';
import type { ClientKind } from './clients.js';

/**
 * Heap bytes a queued message really holds: a one-byte (ASCII) V8 string is a 16-byte header
 * plus one byte per character, and its slot in the queue's ring buffer (value, cost and
 * arrival time) adds about 24. The default `memoryCost` would charge 2 bytes a character (an
 * upper bound for any string); the demo knows its messages are ASCII, so it says so.
 */
export function messageCost(message: string): number {
  return 40 + message.length;
}

/** The server end of a connection. */
export interface Connection {
  /** The kind of the client at the other end (set once the clients are matched). */
  kind: ClientKind | undefined;
  readonly socket: net.Socket;
  readonly account: Account | null;
  readonly sink: Sink;
  alive: boolean;
  killed: boolean;
  /** Bytes the producer queued for it. */
  queued: number;
  /** Bytes its client had read, and the bytes in the kernel, when it was reclaimed. */
  receivedAtKill: number | null;
  kernelAtKill: number | null;
}

/** The running server. */
export interface FloodServer {
  readonly port: number;
  readonly connections: Connection[];
  /** Connections by the client's local port. */
  readonly byPort: Map<number, Connection>;
  /** Connections reclaimed, and when (seconds on `clock`). */
  readonly killTimes: number[];
  /** Bytes held by the untracked queues (baseline only). */
  untrackedHeld(): number;
  /** Closes every connection and the server. */
  close(): Promise<void>;
}

/** Options of the server. */
export interface ServerOptions {
  readonly tracker: MemoryQuotaTracker | null;
  readonly via: QueueKind;
  /** Seconds since the producer started (for the reclamation times). */
  readonly clock: () => number;
  /** Reads the client's received bytes for a connection, to note the kernel's share at a kill. */
  readonly receivedBy: (conn: Connection) => number;
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

/**
 * Bytes in flight in the kernel for a connection: what the server's socket has passed to the
 * kernel (`bytesWritten` counts Node's own buffer too, so `writableLength` is taken off) minus
 * what the client has read. That is the server's send buffer plus the client's receive buffer.
 */
export function kernelBytes(conn: Connection, received: number): number {
  return Math.max(0, conn.socket.bytesWritten - conn.socket.writableLength - received);
}

/** Starts the server. */
export async function startServer(options: ServerOptions): Promise<FloodServer> {
  const { tracker, via, clock } = options;
  const serverAccount = tracker?.newAccount() ?? null;
  const connections: Connection[] = [];
  const byPort = new Map<number, Connection>();
  const killTimes: number[] = [];
  let untracked = 0;

  const kill = (conn: Connection): void => {
    if (!conn.alive) return;
    conn.alive = false;
    conn.killed = true;
    killTimes.push(clock());
    const received = options.receivedBy(conn);
    conn.receivedAtKill = received;
    conn.kernelAtKill = kernelBytes(conn, received);
    conn.socket.destroy();
  };

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    const account = serverAccount?.newChild() ?? null;
    const hooks = { onReclaimed: () => kill(conn), onUntracked: (delta: number) => void (untracked += delta) };
    const conn: Connection = {
      kind: undefined,
      socket,
      account,
      sink: openSink(socket, account, messageCost, via, hooks),
      alive: true,
      killed: false,
      queued: 0,
      receivedAtKill: null,
      kernelAtKill: null,
    };
    // Reclamation must reach a connection even while its writer waits for a 'drain' that a
    // paused client will never send: destroy the socket as soon as the account collapses.
    account?.collapsed$.subscribe((reason) => {
      if (reason === 'reclaimed') kill(conn);
    });
    socket.once('close', () => {
      conn.alive = false;
      conn.sink.end();
      conn.account?.close();
    });
    connections.push(conn);
    byPort.set(socket.remotePort!, conn);
  });
  const port = await listen(server);

  return {
    port,
    connections,
    byPort,
    killTimes,
    untrackedHeld: () => untracked,
    async close() {
      for (const conn of connections) {
        conn.alive = false;
        conn.sink.end();
        conn.socket.destroy();
        conn.account?.close();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      serverAccount?.close();
    },
  };
}
