/**
 * The flood's clients: TCP connections to the server, in the same process, reading at their
 * kind's pace: fast (everything, at once), paused (never), trickle (a fixed byte rate).
 *
 * @module
 */
import net from 'node:net';

export type ClientKind = 'fast' | 'paused' | 'trickle';

/** The client end of a connection, reading at its kind's pace. */
export interface Client {
  readonly kind: ClientKind;
  readonly socket: net.Socket;
  /** Bytes read so far. */
  received: number;
}

/** Kinds for `clients` connections: the slow ones spread evenly, alternately paused and trickling. */
export function clientKinds(clients: number, slowShare: number): ClientKind[] {
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

/** The clients of a run, and the timers of the trickling ones (cleared by `close`). */
export interface Clients {
  readonly list: readonly Client[];
  close(): void;
}

/** Opens one client per kind, 50 at a time. */
export async function openClients(port: number, kinds: readonly ClientKind[], trickleBytesPerSecond: number): Promise<Clients> {
  const timers = new Set<NodeJS.Timeout>();
  const list: Client[] = [];
  for (let i = 0; i < kinds.length; i += 50) {
    list.push(...(await Promise.all(kinds.slice(i, i + 50).map((kind) => openClient(port, kind, trickleBytesPerSecond, timers)))));
  }
  return {
    list,
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const client of list) client.socket.destroy();
    },
  };
}
