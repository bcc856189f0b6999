/**
 * The flood's producer: every 10 ms tick, each live connection gets its share of `rate`
 * messages per second, each its own string (`JSON.stringify` builds a fresh flat string: real
 * memory per connection). It counts what it produced, and the message batches it owed, so the
 * demo can say whether the machine kept up with the nominal load.
 *
 * @module
 */
import type { Connection } from './server.js';

const TICK_MS = 10;
/**
 * A late tick (GC pause, busy loop) makes up for at most this: a burst of seconds' worth of
 * messages at once would give every queue, fast ones included, a block of equally old data,
 * which is not the load this demo is about. It is also why a busy machine produces less than
 * the nominal load (the demo then says so).
 */
const MAX_CATCH_UP_MS = 50;

/** The running producer. */
export interface Producer {
  /** Messages produced (over all connections), and their bytes. */
  readonly messages: number;
  readonly bytes: number;
  /** Message batches (one message per live connection) produced, and owed at the nominal rate. */
  readonly batches: number;
  owedBatches(): number;
  stop(): void;
}

/** Starts producing `rate` messages per second per connection, of `messageSize` payload characters. */
export function startProducer(connections: readonly Connection[], rate: number, messageSize: number): Producer {
  const payload = 'x'.repeat(messageSize);
  const startedAt = performance.now();
  let lastTick = startedAt;
  let owed = 0;
  const state = { messages: 0, bytes: 0, batches: 0 };
  const timer = setInterval(() => {
    const now = performance.now();
    owed = Math.min(owed + ((now - lastTick) / 1000) * rate, (MAX_CATCH_UP_MS / 1000) * rate + 1);
    lastTick = now;
    const batch = Math.floor(owed);
    owed -= batch;
    for (let b = 0; b < batch; b++) {
      const seq = ++state.batches;
      for (let c = 0; c < connections.length; c++) {
        const conn = connections[c]!;
        if (!conn.alive) continue;
        const message = JSON.stringify({ c, seq, t: now, payload }) + '\n';
        conn.queued += message.length;
        state.bytes += message.length;
        state.messages++;
        conn.sink.push(message);
      }
    }
  }, TICK_MS);
  let stoppedAt: number | null = null;
  return {
    get messages() {
      return state.messages;
    },
    get bytes() {
      return state.bytes;
    },
    get batches() {
      return state.batches;
    },
    owedBatches: () => (((stoppedAt ?? performance.now()) - startedAt) / 1000) * rate,
    stop() {
      stoppedAt ??= performance.now();
      clearInterval(timer);
    },
  };
}
