/**
 * Real sockets on 127.0.0.1 for the Node I/O specs: a server on port 0 that remembers the
 * sockets it accepted, clients that count what they read, and one `closeAll` that leaves no
 * handle open (the mocha run must exit).
 */
import net from 'node:net';
import { once } from 'node:events';
import { Writable } from 'node:stream';

/** A TCP server on an ephemeral port that tracks its accepted sockets. */
export interface TestServer {
  server: net.Server;
  port: number;
  /** Server-side sockets, in the order accepted. */
  accepted: net.Socket[];
  /** Resolves once `n` connections have been accepted. */
  connections(n: number): Promise<void>;
}

export async function listen(onConnection: (socket: net.Socket) => void, highWaterMark = 16 * 1024): Promise<TestServer> {
  const accepted: net.Socket[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = net.createServer({ highWaterMark }, (socket) => {
    accepted.push(socket);
    socket.on('error', () => {}); // a reclaimed socket is destroyed with an error; the spec checks it elsewhere
    onConnection(socket);
    for (const w of waiters) if (accepted.length >= w.n) w.resolve();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    accepted,
    connections: (n) => (accepted.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

/** A client socket that counts the bytes it reads. */
export interface TestClient {
  socket: net.Socket;
  bytes: number;
  /** Resolves when the socket has closed (however). */
  closed: Promise<void>;
  /** Whether the server ended the stream cleanly ('end' seen). */
  ended: boolean;
}

export function connect(port: number, { paused = false } = {}): TestClient {
  // A small readable buffer, so that a paused client stops reading from the kernel early
  // (net.Socket passes highWaterMark to its Duplex; @types/node does not list it).
  const options = { port, host: '127.0.0.1', highWaterMark: 1024 };
  const socket = net.connect(options);
  const client: TestClient = { socket, bytes: 0, closed: once(socket, 'close').then(() => {}), ended: false };
  socket.on('error', () => {}); // ECONNRESET when the server destroys a reclaimed socket
  socket.on('end', () => (client.ended = true));
  if (paused) socket.pause();
  else socket.on('data', (chunk: Buffer) => (client.bytes += chunk.length));
  return client;
}

/** Destroys every socket and closes the server. */
export async function closeAll(server: TestServer | undefined, clients: TestClient[]): Promise<void> {
  for (const c of clients) c.socket.destroy();
  if (server === undefined) return;
  for (const s of server.accepted) s.destroy();
  await new Promise<void>((resolve) => server.server.close(() => resolve()));
}

/** A writable whose `_write` never calls back: everything handed to it stays in its buffer. */
export function stuckWritable(highWaterMark: number): Writable {
  return new Writable({ highWaterMark, write() {} });
}

/** A writable that takes each chunk on the next turn, recording what it got. */
export function healthyWritable(highWaterMark = 16 * 1024): Writable & { received: number } {
  const w = new Writable({
    highWaterMark,
    write(chunk: Buffer, _encoding, callback) {
      w.received += chunk.length;
      setImmediate(callback);
    },
  }) as Writable & { received: number };
  w.received = 0;
  return w;
}

/** One turn of the event loop. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
