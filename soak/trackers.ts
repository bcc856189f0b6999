/**
 * The trackers under soak ("slots"): two long-lived ones (asynchronous and synchronous
 * reclamation, oldest and largest victim policy) and an ephemeral one shut down and replaced
 * every couple of seconds; their server and connection accounts.
 *
 * @module
 */
import { queueScheduler, type SchedulerLike, Subscription } from 'rxjs';
import { type Account, ConfigError, type MemquotaConfig, MemoryQuotaTracker, MemquotaError, type TrackerOptions } from '../index.js';
import { args } from './args.js';
import { checkBooks } from './books.js';
import { rng } from './random.js';
import { counters, describeError, events, participantErrors, violation } from './report.js';
import type { Stream } from './streams/stream.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

export interface Slot {
  readonly name: string;
  readonly tracker: MemoryQuotaTracker;
  readonly ephemeral: boolean;
  readonly servers: Account[];
  readonly connections: Account[];
  readonly streams: Set<Stream>;
  peak: number;
  peakMax: number;
  claims: number;
  lastOutcome: string;
  readonly subscriptions: Subscription;
}

export const slots: Slot[] = [];
/** Totals of trackers that were shut down, folded into the summary. */
export const retired = { claims: 0, reclaimRuns: 0, victims: 0, accountsCollapsed: 0, bytesReclaimed: 0, peakRatio: 0 };

/** How long a hostile participant's reclaim() may stay unanswered (`--hostile`), ms. */
export const RECLAIM_TIMEOUT_MS = 100;

/**
 * `MemoryQuotaTracker.create` with options this build of the core may not know yet
 * (`reclaimTimeout`): today unknown options are ignored; if a later core refuses one by name
 * (a ConfigError naming the field), the tracker is created without it and the soak says so once.
 */
export function createTracker(config: MemquotaConfig, options: TrackerOptions & { reclaimTimeout?: number }): MemoryQuotaTracker {
  try {
    return MemoryQuotaTracker.create(config, options);
  } catch (err) {
    const refused = err instanceof ConfigError ? err.fields.filter((f) => f in options && f !== 'scheduler' && f !== 'victimPolicy') : [];
    if (refused.length === 0) throw err;
    if (!warnedRefused) console.log(`soak: this tracker does not take ${refused.join(', ')}; running without`);
    warnedRefused = true;
    const rest: Record<string, unknown> = { ...options };
    for (const f of refused) delete rest[f];
    return MemoryQuotaTracker.create(config, rest as TrackerOptions);
  }
}
let warnedRefused = false;

export function makeSlot(name: string, scheduler: SchedulerLike | undefined, victimPolicy: 'oldest' | 'largest', ephemeral: boolean): Slot {
  const options: TrackerOptions = scheduler === undefined ? { victimPolicy } : { scheduler, victimPolicy };
  // --hostile has participants that never answer reclaim(): the tracker's reclaimTimeout
  // counts them as collapsed after RECLAIM_TIMEOUT_MS (an option the core is adding).
  const tracker = createTracker({ max: 2 * MiB }, args.hostile ? { ...options, reclaimTimeout: RECLAIM_TIMEOUT_MS } : options);
  const slot: Slot = {
    name,
    tracker,
    ephemeral,
    servers: [],
    connections: [],
    streams: new Set(),
    peak: 0,
    peakMax: tracker.max,
    claims: 0,
    lastOutcome: 'none',
    subscriptions: new Subscription(),
  };
  let previous = 0;
  slot.subscriptions.add(
    tracker.usage$.subscribe((u) => {
      if (u.used > previous) slot.claims++;
      previous = u.used;
      if (u.used / u.max > slot.peak / slot.peakMax) {
        slot.peak = u.used;
        slot.peakMax = u.max;
      }
    }),
  );
  slot.subscriptions.add(
    tracker.events$.subscribe((e) => {
      events.add(e.type);
      if (e.type === 'collapse') checkBooks(slot, `inside a collapse event (${e.reason})`);
      else if (e.type === 'reclaim-end') slot.lastOutcome = e.outcome;
      else if (e.type === 'participant-error') participantErrors.add(e.fault);
    }),
  );
  for (let i = 0; i < 3; i++) slot.servers.push(tracker.newAccount());
  return slot;
}

/** A connection account: a child of a server, sometimes of two. */
export function openConnection(slot: Slot): Account {
  const conn = rng.pick(slot.servers).newChild();
  if (rng.chance(0.2)) {
    const other = rng.pick(slot.servers);
    try {
      conn.addParent(other);
    } catch (err) {
      // the same server twice: the documented refusal
      if (!(err instanceof MemquotaError && err.kind === 'ChildAccountAlreadyExists')) violation(`addParent: ${describeError(err)}`);
    }
  }
  slot.connections.push(conn);
  return conn;
}

/** An open connection of the slot (closed or reclaimed ones are dropped on the way). */
export function connection(slot: Slot): Account {
  for (;;) {
    if (slot.connections.length === 0) return openConnection(slot);
    const i = rng.int(slot.connections.length);
    const conn = slot.connections[i]!;
    if (!conn.closed) return conn;
    conn.close();
    slot.connections[i] = slot.connections[slot.connections.length - 1]!;
    slot.connections.pop();
  }
}

/** Opens the soak's trackers: A (asynchronous, oldest first), B (synchronous, largest first), C (ephemeral). */
export function openSlots(): void {
  slots.push(makeSlot('A', undefined, 'oldest', false));
  slots.push(makeSlot('B', queueScheduler, 'largest', false));
  slots.push(makeSlot(`C${++counters.ephemeralCount}`, undefined, 'oldest', true));
}

/**
 * A new child of an open connection. A connection whose reclamation is under way (its answer
 * pending) refuses new children with `AccountClosed`, the documented refusal: another
 * connection is taken then.
 */
export function childOfConnection(slot: Slot): Account {
  for (let attempt = 0; ; attempt++) {
    const conn = attempt < 3 ? connection(slot) : openConnection(slot);
    try {
      return conn.newChild();
    } catch (err) {
      if (!(err instanceof MemquotaError && err.kind === 'AccountClosed') || attempt >= 5) throw err;
    }
  }
}
