/**
 * Stream kind: a hand-written participant (a queue of chunks consumed at some pace) with an
 * injected fault: partial or slow answers, throwing or lying callbacks, over-release.
 *
 * @module
 */
import { type Account, MemquotaError, type Participant, type Participation, type Reclaimed } from '../../index.js';
import { args } from '../args.js';
import { rng } from '../random.js';
import { counters, describeError, faults, SoakFault, violation } from '../report.js';
import { childOfConnection, connection, type Slot } from '../trackers.js';
import { sampled, Stream } from './stream.js';

export type ParticipantFaultMode =
  | 'none'
  | 'partial'
  | 'async'
  | 'reentrant'
  | 'getOldest-throws'
  | 'reclaim-throws'
  | 'reclaim-rejects'
  | 'reclaim-invalid'
  | 'lies-no-data'
  | 'over-releases'
  // --hostile only (issue 13):
  | 'reclaim-then-throws'
  | 'reclaim-revoked-proxy'
  | 'reclaim-never-settles';

const MODES: readonly (readonly [number, ParticipantFaultMode])[] = [
  [40, 'none'],
  [12, 'partial'],
  [10, 'async'],
  [8, 'reentrant'],
  [6, 'getOldest-throws'],
  [6, 'reclaim-throws'],
  [5, 'reclaim-rejects'],
  [4, 'reclaim-invalid'],
  [5, 'lies-no-data'],
  [4, 'over-releases'],
];
const HOSTILE_MODES: readonly (readonly [number, ParticipantFaultMode])[] = [
  ...MODES,
  [4, 'reclaim-then-throws'],
  [4, 'reclaim-revoked-proxy'],
  [3, 'reclaim-never-settles'],
];

/** A `reclaim()` answer whose `then` getter throws: a participant fault, never tracker corruption. */
function thenThrows(): Reclaimed {
  return {
    get then(): never {
      throw new SoakFault('then getter throws');
    },
  } as unknown as Reclaimed;
}

/** A revoked Proxy as a `reclaim()` answer: any inspection of it throws a TypeError. */
function revokedProxy(): Reclaimed {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy as unknown as Reclaimed;
}

/** A hand-written participant: a queue of chunks, consumed at some pace, with an injected fault. */
export class ParticipantStream extends Stream implements Participant {
  participation: Participation;
  private readonly times: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  /** What this participant has claimed and not released, by its own count. */
  held = 0;
  private readonly mode: ParticipantFaultMode;
  private readonly rate: number;
  private armed = false;
  private readonly account: Account;
  private readonly ownsAccount: boolean;

  constructor(slot: Slot) {
    super('participant', slot, 'any');
    this.mode = rng.weighted<ParticipantFaultMode>(args.hostile ? HOSTILE_MODES : MODES);
    this.rate = rng.weighted([
      [30, 8],
      [30, 1],
      [40, 0],
    ]);
    this.ownsAccount = rng.chance(0.4);
    this.account = this.ownsAccount ? childOfConnection(slot) : connection(slot);
    if (rng.chance(0.3)) {
      this.participation = null as unknown as Participation; // set by make, before anything else
      try {
        const self = this.account.registerParticipantWith((p) => {
          this.participation = p;
          this.add(); // claims inside the constructor: past max, a synchronous scheduler reclaims at once
          return this;
        });
        if (self !== this) violation('registerParticipantWith returned another object');
      } catch (err) {
        if (!(err instanceof MemquotaError && err.kind === 'ParticipantShutdown')) throw err;
        if (!this.participation.closed) violation(`participant #${this.id}: refused, yet its participation is live`);
        this.finish('participant: reclaimed while being constructed');
        if (this.ownsAccount) this.account.close();
      }
    } else {
      this.participation = this.account.registerParticipant(this);
    }
    sampled('participant', this);
  }

  private add(): void {
    const bytes = rng.weighted([
      [70, rng.between(1, 2000)],
      [30, rng.between(2000, 40000)],
    ]);
    this.participation.claim(bytes);
    this.held += bytes;
    this.times.push(this.slot.tracker.now());
    this.sizes.push(bytes);
    counters.valuesPushed++;
    this.pushed++;
  }

  private releaseOldest(): void {
    const bytes = this.sizes[this.head]!;
    this.participation.release(bytes);
    this.held -= bytes;
    this.sizes[this.head] = 0;
    this.head++;
    counters.valuesDelivered++;
    this.delivered++;
    if (this.head > 64 && this.head * 2 > this.times.length) {
      this.times.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }

  private get queued(): number {
    return this.times.length - this.head;
  }

  private releaseAll(): void {
    while (this.queued > 0) this.releaseOldest();
  }

  push(): void {
    if (this.ended) return;
    if (this.participation.closed) return this.tornDown();
    try {
      this.add();
    } catch (err) {
      violation(`participant #${this.id}: claim on a live participation threw ${describeError(err)}`);
    }
    if (!this.armed && rng.chance(0.05)) this.armed = true;
  }

  override step(): void {
    if (this.ended) return;
    if (this.participation.closed) return this.tornDown();
    for (let i = 0; i < this.rate && this.queued > 0; i++) this.releaseOldest();
    if (this.mode === 'over-releases' && this.armed && rng.chance(0.02)) {
      faults.add('participant: over-releases');
      this.participation.release(this.held + 100);
      this.held = 0;
      this.head = this.times.length;
    }
    if (this.participation.claimed !== this.held) {
      violation(`participant #${this.id}: participation.claimed ${this.participation.claimed} but it holds ${this.held}`);
      this.held = this.participation.claimed;
    }
  }

  private tornDown(): void {
    this.finish(`participant: torn down (${this.mode})`);
    if (this.ownsAccount) this.account.close();
  }

  getOldest(): number | undefined {
    if (this.armed && this.mode === 'getOldest-throws') {
      faults.add('participant: getOldest throws');
      throw new SoakFault('getOldest throws');
    }
    if (this.armed && this.mode === 'lies-no-data') return undefined;
    return this.queued > 0 ? this.times[this.head] : undefined;
  }

  reclaim(): Reclaimed | PromiseLike<Reclaimed> {
    if (this.armed) {
      switch (this.mode) {
        case 'reclaim-throws':
          faults.add('participant: reclaim throws');
          throw new SoakFault('reclaim throws');
        case 'reclaim-rejects':
          faults.add('participant: reclaim rejects');
          return Promise.reject(new SoakFault('reclaim rejects'));
        case 'reclaim-invalid':
          faults.add('participant: reclaim answers nonsense');
          return 'maybe' as Reclaimed;
        case 'reclaim-then-throws':
          faults.add('participant: reclaim answer with a throwing then getter');
          return thenThrows();
        case 'reclaim-revoked-proxy':
          faults.add('participant: reclaim answers a revoked Proxy');
          return revokedProxy();
        case 'reclaim-never-settles':
          // Only the tracker's reclaimTimeout ends this (the participant counts as collapsed).
          faults.add('participant: reclaim never settles');
          return new Promise<Reclaimed>(() => undefined);
        default:
          break;
      }
    }
    switch (this.mode) {
      case 'partial': {
        const half = Math.ceil(this.queued / 2);
        for (let i = 0; i < half; i++) this.releaseOldest();
        return 'partial';
      }
      case 'async':
        return new Promise<Reclaimed>((resolve) =>
          setTimeout(() => {
            this.releaseAll();
            resolve('collapsing');
          }, rng.between(0, 4)),
        );
      case 'reentrant': {
        // Allowed inside reclaim(): claim on another participant, open and close an account.
        const other = [...this.slot.streams].find((s): s is ParticipantStream => s instanceof ParticipantStream && s !== this && !s.participation.closed);
        if (other !== undefined) other.push();
        this.slot.tracker.newAccount().close();
        this.releaseAll();
        return 'collapsing';
      }
      default:
        this.releaseAll();
        return 'collapsing';
    }
  }

  close(): void {
    if (this.ended) return;
    this.closedBy = 'unsubscribe';
    if (rng.chance(0.3)) this.participation.destroy();
    else this.participation.close();
    this.finish('participant: closed');
    if (this.ownsAccount) this.account.close();
  }

  override forget(): void {
    faults.add('participant: forgotten without close');
    super.forget();
  }

  release(): void {
    this.participation.close();
    this.finish('participant: closed at the end');
    if (this.ownsAccount) this.account.close();
  }
}
