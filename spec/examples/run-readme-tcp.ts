/**
 * Runs the README's TCP example (`tcpServer()` of `readme-nodeio.ts`, port 7000) for real with
 * one reading and one paused client, and prints what happened; exits 1 if the paused client
 * was not dropped within 40 s or the reading client missed a byte. Not a spec (it takes
 * ~13 s): `node --import tsx spec/examples/run-readme-tcp.ts [channel]` (`channel`: the
 * channel example on port 7001, which logs nothing: its drop is the server's socket destroyed).
 */
import net from 'node:net';
import { channelServer, tcpServer } from './readme-nodeio.js';

// `channel` as the first argument runs the channel example (port 7001) instead.
const channel = process.argv[2] === 'channel';
const first = tcpServer();
const { tracker } = first;
const server = channel ? channelServer(first) : first.server;
const port = channel ? 7001 : 7000;
if (channel) first.server.close();
const started = performance.now();
const seconds = (): string => ((performance.now() - started) / 1000).toFixed(1);
const log = console.log;
let dropped: string | undefined;
console.log = (...args: unknown[]) => {
  if (args[0] === 'slow client dropped' && dropped === undefined) dropped = seconds();
  log(`[${seconds()} s]`, ...args);
};

/** The server's side of each connection: a dropped client's socket must be destroyed. */
const accepted: net.Socket[] = [];
server.on('connection', (socket: net.Socket) => accepted.push(socket));
const destroyed = (): number => accepted.filter((s) => s.destroyed).length;
let destroyedAt: string | undefined;

server.once('listening', () => {
  const reader = net.connect({ port, host: '127.0.0.1' });
  let read = 0;
  let firstByte = -1;
  let ordered = true;
  reader.on('data', (chunk: Buffer) => {
    // Frame i is filled with i & 0xff: every byte must follow the one before, frame by frame.
    for (let k = 0; k < chunk.length; k += 4096) {
      const expected = Math.floor((read + k) / 65536 + firstByte) & 0xff;
      if (firstByte < 0) firstByte = chunk[0]!;
      else if (chunk[k] !== expected) ordered = false;
    }
    read += chunk.length;
  });
  const paused = net.connect({ port, host: '127.0.0.1', highWaterMark: 1024 } as net.NetConnectOpts);
  paused.pause();
  paused.on('error', () => {});
  let pausedClosed = false;
  paused.on('close', () => (pausedClosed = true));

  const timer = setInterval(() => {
    if (destroyedAt === undefined && destroyed() > 0) destroyedAt = seconds();
    if (channel && dropped === undefined && destroyedAt !== undefined) dropped = destroyedAt; // it logs nothing
    log(`[${seconds()} s] used ${(tracker.used / 2 ** 20).toFixed(1)} MiB, reader got ${(read / 2 ** 20).toFixed(1)} MiB, server sockets destroyed ${destroyed()}`);
    if ((dropped !== undefined && performance.now() - started > Number(dropped) * 1000 + 2000) || performance.now() - started > 40_000) {
      clearInterval(timer);
      // Let the paused client read what the kernel still holds: the connection must end.
      paused.resume();
      setTimeout(() => {
        const ok = dropped !== undefined && destroyedAt !== undefined && ordered && pausedClosed && !reader.destroyed && destroyed() === 1;
        log(
          `paused client dropped at ${dropped ?? 'never'} s, server socket destroyed at ${destroyedAt ?? 'never'} s; ` +
            `client side closed: ${pausedClosed}; reader in order: ${ordered}; used now ${tracker.used} bytes`,
        );
        process.exit(ok ? 0 : 1);
      }, 1000);
    }
  }, 1000);
});
