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
import { ReentrantStream } from './reentrant.js';
import { ReturnedIteratorStream } from './returned-iterator.js';
import { args } from '../args.js';
import type { Stream } from './stream.js';

export { MemquotaStream, MemquotaMapStream, ParticipantStream, QueueStream, ReentrantStream, ReturnedIteratorStream };

export type AnyStream = MemquotaStream | MemquotaMapStream | QueueStream | ParticipantStream | ReentrantStream | ReturnedIteratorStream;

const KINDS: readonly (readonly [number, (s: Slot) => AnyStream])[] = [
  [30, (s) => new MemquotaStream(s)],
  [25, (s) => new MemquotaMapStream(s)],
  [25, (s) => new QueueStream(s)],
  [20, (s) => new ParticipantStream(s)],
];
/** With `--hostile`: the shapes of issue 13 besides the hostile participant modes. */
const HOSTILE_KINDS: readonly (readonly [number, (s: Slot) => AnyStream])[] = [
  ...KINDS,
  [10, (s) => new ReentrantStream(s)],
  [6, (s) => new ReturnedIteratorStream(s)],
];

/** Opens a stream of a kind picked at random. */
export function openStream(slot: Slot): void {
  rng.weighted(args.hostile ? HOSTILE_KINDS : KINDS)(slot);
}

export function liveStreams(): Stream[] {
  const all: Stream[] = [];
  for (const slot of slots) for (const s of slot.streams) all.push(s);
  return all;
}
