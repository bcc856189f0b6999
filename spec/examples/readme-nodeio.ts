/**
 * The code examples of `README.md (Example)`, as written there (imports pointed at the
 * sources), so that `npm run typecheck` keeps the README honest. Each example is the body of
 * an exported function: importing this file starts nothing. `tcpServer()` is the README's first
 * example; `node --import tsx spec/examples/run-readme-tcp.ts` runs it against one reading
 * and one paused client.
 */
import { once } from 'node:events';
import net from 'node:net';
import { interval, map, share } from 'rxjs';
import { MemoryQuotaTracker, MemoryReclaimedError, memquotaQueue } from '../../index.js';
import { writeTo } from '../../node/index.js';

/** "Example: a TCP server whose slow clients are dropped". Returns what the run script inspects. */
export function tcpServer() {
  // ---- README, verbatim from here ----
  // One tracker for the whole process: reclaim above 64 MiB, down to 48 MiB.
  const tracker = MemoryQuotaTracker.create({ max: 64 << 20, lowWater: 48 << 20 });
  const clients = tracker.newAccount({ name: 'clients' });

  // One feed for everyone: a 64 KiB frame every 10 ms.
  const feed$ = interval(10).pipe(map((i) => Buffer.alloc(64 * 1024, i)), share());

  const server = net.createServer((socket) => {
    socket.on('error', () => {}); // a reclaimed client's socket is destroyed with the MemoryReclaimedError
    feed$.pipe(writeTo(socket, () => clients.newChild({ name: `conn ${socket.remotePort}` }))).subscribe({
      error: (err) => console.log(err instanceof MemoryReclaimedError ? 'slow client dropped' : `client gone: ${err.message}`),
    });
  }).listen(7000);
  // ---- to here (only `const server =` added) ----
  return { tracker, clients, feed$, server };
}

/** "The channel form and `account.signal`", with the first example's `clients` and `feed$`. */
export function channelServer({ clients, feed$ }: Pick<ReturnType<typeof tcpServer>, 'clients' | 'feed$'>): net.Server {
  // ---- README, verbatim from here ----
  return net.createServer(async (socket) => {
    socket.on('error', () => {});
    const connection = clients.newChild({ name: `conn ${socket.remotePort}` });
    const { sender, receiver } = memquotaQueue<Buffer>(connection, { cost: (b) => b.length });
    const subscription = feed$.subscribe(sender);
    try {
      for await (const chunk of receiver) {
        // Parked on 'drain' when the client is slow; the signal ends the wait if it is reclaimed.
        if (!socket.write(chunk)) await once(socket, 'drain', { signal: connection.signal });
      }
    } catch {
      // Reclaimed: MemoryReclaimedError from the receiver, or an AbortError whose cause is it.
    } finally {
      subscription.unsubscribe();
      connection.close();
      socket.destroy();
    }
  }).listen(7001);
}
