/**
 * The driver: step after step until the deadline, open, push, close and forget streams, open
 * and close accounts, pump the lagging consumers, audit every tracker; every few hundred ms
 * reconfigure, collect garbage, rotate the ephemeral tracker, check the settled state. Then the
 * wind-down: close everything and let the garbage collector take what was forgotten.
 *
 * @module
 */
import { gc } from './args.js';
import { quiescentCheck, settledWithin } from './audits.js';
import { checkBooks } from './books.js';
import { reconfigure, rotateEphemeral } from './churn.js';
import { pump, sleep, turn } from './pump.js';
import { rng } from './random.js';
import { counters, faults } from './report.js';
import { type AnyStream, liveStreams, openStream, ParticipantStream, QueueStream } from './streams/index.js';
import { openConnection, slots } from './trackers.js';

export async function drive(deadline: number): Promise<void> {
  let nextReconfigure = performance.now() + 300;
  let nextGc = performance.now() + 1000;
  let nextRotate = performance.now() + 2000;
  let nextQuiet = performance.now() + 500;
  let target = 200;
  while (performance.now() < deadline) {
    counters.steps++;
    const live = liveStreams();
    if (counters.steps % 500 === 0) target = rng.between(50, 500);
    // open
    const opens = live.length < target ? rng.between(2, 12) : rng.between(0, 2);
    for (let i = 0; i < opens; i++) openStream(rng.pick(slots));
    // push
    const all = liveStreams();
    for (let i = 0; i < Math.min(all.length, 40); i++) {
      const s = rng.pick(all);
      const n = rng.weighted([
        [60, 1],
        [30, 4],
        [10, 16],
      ]);
      for (let k = 0; k < n && !s.ended; k++) s.push();
    }
    // close, forget
    const closes = live.length > target ? rng.between(2, 12) : rng.between(0, 3);
    for (let i = 0; i < closes && all.length > 0; i++) rng.pick(all).close();
    if (rng.chance(0.03) && all.length > 0) {
      const s = rng.pick(all);
      if (s instanceof ParticipantStream || s instanceof QueueStream) s.forget();
    }
    // accounts come and go
    for (const slot of slots) {
      if (slot.connections.length < 30 && rng.chance(0.3)) openConnection(slot);
      if (slot.connections.length > 3 && rng.chance(0.03)) {
        const i = rng.int(slot.connections.length);
        const conn = slot.connections[i]!;
        slot.connections[i] = slot.connections[slot.connections.length - 1]!;
        slot.connections.pop();
        if (rng.chance(0.2)) faults.add('connection: forgotten without close');
        else conn.close();
      }
    }
    // consumers
    pump.pump(rng.between(0, 60));
    for (const s of liveStreams()) s.step();
    for (const slot of slots) checkBooks(slot, 'after a step');

    const now = performance.now();
    if (now >= nextReconfigure) {
      nextReconfigure = now + rng.between(150, 450);
      reconfigure(rng.pick(slots));
    }
    if (now >= nextGc) {
      nextGc = now + 1000;
      gc!();
      counters.gcs++;
    }
    if (now >= nextRotate) {
      nextRotate = now + 2000;
      await rotateEphemeral();
    }
    if (now >= nextQuiet) {
      nextQuiet = now + 500;
      await quiescentCheck();
    }
    if (counters.steps % 8 === 0) await sleep(1);
    else await turn();
  }
}

/** Closes everything still open, then lets the garbage collector take what was forgotten. */
export async function windDown(): Promise<{ rounds: number }> {
  for (const s of liveStreams()) (s as AnyStream).release();
  pump.clear();
  for (const slot of slots) {
    for (const conn of slot.connections) conn.close();
    slot.connections.length = 0;
  }
  // Readers of channels that were told to leave need a few turns to see it.
  for (let i = 0; i < 20; i++) await turn();
  await sleep(20);
  for (const slot of slots) {
    for (const server of slot.servers) server.close();
    slot.servers.length = 0;
  }
  let rounds = 0;
  const clean = (): boolean => slots.every((s) => {
    const r = s.tracker.audit();
    return r.accounts === 0 && r.participants === 0 && s.tracker.used === 0;
  });
  // Forgotten handles and abandoned channels are freed by FinalizationRegistry callbacks,
  // which run in tasks after a collection: a few rounds suffice when nothing holds them.
  while (!clean() && rounds < 40) {
    rounds++;
    if (!(await settledWithin(10_000))) break;
    gc!();
    await turn();
    if (rounds % 10 === 0) await sleep(5);
  }
  return { rounds };
}
