/**
 * The stream kinds, and how the driver opens one at random.
 *
 * @module
 */
import { rng } from '../random.js';
import { slots, type Slot } from '../trackers.js';
import { MemquotaStream } from './memquota.js';
import { MemquotaMapStream } from './memquotaMap.js';
import { ParticipantStream } from './participant.js';
import { QueueStream } from './queue.js';
import type { Stream } from './stream.js';

export { MemquotaStream, MemquotaMapStream, ParticipantStream, QueueStream };

export type AnyStream = MemquotaStream | MemquotaMapStream | QueueStream | ParticipantStream;

export function openStream(slot: Slot): void {
  const make = rng.weighted<(s: Slot) => AnyStream>([
    [30, (s) => new MemquotaStream(s)],
    [25, (s) => new MemquotaMapStream(s)],
    [25, (s) => new QueueStream(s)],
    [20, (s) => new ParticipantStream(s)],
  ]);
  make(slot);
}

export function liveStreams(): Stream[] {
  const all: Stream[] = [];
  for (const slot of slots) for (const s of slot.streams) all.push(s);
  return all;
}
