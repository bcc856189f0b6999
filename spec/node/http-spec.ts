import { expect } from 'chai';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { interval, map, take } from 'rxjs';
import { MemoryQuotaTracker } from '../../index.js';
import { writeTo } from '../../node/index.js';
import { expectBooks } from '../helpers/books.js';

const KiB = 1024;

describe('writeTo an http.ServerResponse', () => {
  let server: http.Server | undefined;

  afterEach(async () => {
    server?.closeAllConnections();
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
  });

  it('streams a body, ends the response and completes after finish; a client that leaves errors its stream and releases', async () => {
    const tracker = MemoryQuotaTracker.create({ max: 16 * 1024 * KiB });
    const responses = tracker.newAccount({ name: 'responses' });
    const outcomes: Promise<{ completed: boolean; error?: unknown }>[] = [];
    server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const count = req.url === '/endless' ? Infinity : 32;
      outcomes.push(
        new Promise((resolve) =>
          interval(1)
            .pipe(
              take(count),
              map((i) => Buffer.alloc(16 * KiB, i & 0xff)),
              writeTo(res, () => responses.newChild({ name: req.url })),
            )
            .subscribe({ complete: () => resolve({ completed: true }), error: (error) => resolve({ completed: false, error }) }),
        ),
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;

    const full = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/full' }, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve(bytes));
        res.on('error', reject);
      });
    });
    expect(full).to.equal(32 * 16 * KiB);
    expect(await outcomes[0]).to.deep.equal({ completed: true });
    expectBooks(tracker, [], { participants: 0 });

    // A client that reads a little and goes away.
    const request = http.get({ host: '127.0.0.1', port, path: '/endless' });
    request.on('error', () => {});
    const [response] = (await once(request, 'response')) as [http.IncomingMessage];
    await once(response, 'data');
    expectBooks(tracker);
    request.destroy();
    const left = await outcomes[1]!;
    expect(left.completed).to.equal(false);
    expect((left.error as { code?: string }).code).to.equal('ERR_STREAM_PREMATURE_CLOSE');
    expectBooks(tracker, [], { participants: 0 });
  });
});
