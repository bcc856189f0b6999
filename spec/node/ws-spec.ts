import { expect } from 'chai';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Subject } from 'rxjs';
import { WebSocket, WebSocketServer, createWebSocketStream } from 'ws';
import { MemoryQuotaTracker, MemoryReclaimedError } from '../../index.js';
import { writeTo } from '../../node/index.js';
import { expectBooks, recordEvents } from '../helpers/books.js';
import { turn } from './net.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('writeTo with the ws package (createWebSocketStream)', () => {
  let wss: WebSocketServer | undefined;
  const clients: WebSocket[] = [];

  afterEach(async () => {
    for (const c of clients) c.terminate();
    clients.length = 0;
    if (wss === undefined) return;
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss!.close(() => resolve()));
    wss = undefined;
  });

  it('reclaims a stalled client and closes its connection while a healthy one gets every message', async () => {
    const tracker = MemoryQuotaTracker.create({ max: 1 * MiB, lowWater: 512 * KiB });
    const account = tracker.newAccount({ name: 'ws clients' });
    const events = recordEvents(tracker);
    const messages = new Subject<Buffer>();
    const duplexes: Duplex[] = [];
    const serverSide: WebSocket[] = [];
    const outcomes: { error?: unknown; completed: boolean; ended: Promise<void> }[] = [];
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    wss.on('connection', (ws) => {
      serverSide.push(ws);
      const duplex = createWebSocketStream(ws);
      duplex.on('error', () => {}); // a reclaimed stream is destroyed with MemoryReclaimedError
      duplexes.push(duplex);
      let done!: () => void;
      const outcome = { completed: false, ended: new Promise<void>((resolve) => (done = resolve)) } as (typeof outcomes)[number];
      outcomes.push(outcome);
      messages.pipe(writeTo(duplex, () => account.newChild())).subscribe({
        error: (error) => ((outcome.error = error), done()),
        complete: () => ((outcome.completed = true), done()),
      });
    });
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;

    const healthy = new WebSocket(url);
    clients.push(healthy);
    let received = 0;
    let messagesReceived = 0;
    healthy.on('message', (data: Buffer) => {
      received += data.length;
      messagesReceived++;
    });
    await once(healthy, 'open');
    while (duplexes.length < 1) await turn();
    const stalled = new WebSocket(url);
    clients.push(stalled);
    await once(stalled, 'open');
    stalled.pause(); // stops reading its socket: the server's writes back up
    while (duplexes.length < 2) await turn();
    const healthyClosed = once(healthy, 'close');

    // Send until the stalled client is reclaimed, then a fixed tail: the kernel's socket
    // buffers absorb a machine-dependent amount first (see the net spec).
    let reclaimed = false;
    tracker.events$.subscribe((e) => {
      if (e.type === 'victim') reclaimed = true;
    });
    const size = 64 * KiB;
    const cap = 1024; // 64 MiB
    const tail = 16;
    let count = 0;
    let afterReclaim = 0;
    while (reclaimed ? afterReclaim < tail : count < cap) {
      if (reclaimed) afterReclaim++;
      messages.next(Buffer.alloc(size, count++ & 0xff));
      expectBooks(tracker);
      if (duplexes[0]!.writableNeedDrain) await once(duplexes[0]!, 'drain');
      await turn();
      expectBooks(tracker);
    }
    expect(reclaimed, `the stalled client was not reclaimed after ${count} messages`).to.equal(true);
    messages.complete();
    await Promise.all(outcomes.map((o) => o.ended));
    await healthyClosed;

    expect(outcomes[0]!.completed, 'healthy stream completed').to.equal(true);
    expect(messagesReceived).to.equal(count);
    expect(received).to.equal(count * size);
    expect(outcomes[1]!.error).to.be.instanceOf(MemoryReclaimedError);
    expect(duplexes[1]!.destroyed).to.equal(true);
    if (serverSide[1]!.readyState !== WebSocket.CLOSED) await once(serverSide[1]!, 'close');
    expect(serverSide[1]!.readyState, 'the stalled connection is closed').to.equal(WebSocket.CLOSED);
    expect(events.filter((e) => e.type === 'victim')).to.have.length(1);
    expectBooks(tracker, [], { participants: 0 });
    account.close();
    expectBooks(tracker, [], { accounts: 0, participants: 0 });
  });
});
