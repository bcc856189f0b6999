/**
 * Stream kind (`--hostile` only): a hand-written participant that also subscribes to one of
 * the tracker's signals (`events$`, `usage$`, `pressure$`) or to its own account's
 * `collapsed$`, and from inside that callback calls back into the books: claims, releases,
 * over-releases, closes its participation or its account, or unsubscribes itself. The
 * tracker's contract allows all of these in every callback; the participant keeps its own
 * ledger, and after every step `participation.claimed` must equal it (a claim lost inside an
 * event, or a release applied twice, shows here and in the audit).
 *
 * At most one reentrant action per step and stream, so a `usage$` subscriber that claims does
 * not claim forever.
 *
 * @module
 */
import type { Subscription } from 'rxjs';
import { type Account, MemquotaError, type Participant, type Participation, type Reclaimed } from '../../index.js';
import { rng } from '../random.js';
import { counters, describeError, faults, violation } from '../report.js';
import { childOfConnection, type Slot } from '../trackers.js';
import { sampled, Stream } from './stream.js';

type Signal = 'events$' | 'usage$' | 'pressure$' | 'collapsed$';
type Action = 'claim' | 'release' | 'over-release' | 'close-participation' | 'close-account' | 'unsubscribe';

export class ReentrantStream extends Stream implements Participant {
  readonly participation: Participation;
  private readonly account: Account;
  private readonly signal: Signal;
  private readonly actions: readonly Action[];
  private subscription: Subscription | null = null;
  /** What this participant has claimed and not released, by its own count. */
  private held = 0;
  private oldest: number | undefined = undefined;
  private budget = 1;

  constructor(slot: Slot) {
    super('reentrant subscriber', slot, 'any');
    this.account = childOfConnection(slot);
    this.signal = rng.pick<Signal>(['events$', 'usage$', 'pressure$', 'collapsed$']);
    this.actions = [rng.pick<Action>(['claim', 'release', 'over-release', 'close-participation', 'close-account', 'unsubscribe']), 'claim'];
    this.participation = this.account.registerParticipant(this);
    const tracker = slot.tracker;
    const callback = (): void => this.react();
    switch (this.signal) {
      case 'events$':
        this.subscription = tracker.events$.subscribe(callback);
        break;
      case 'usage$':
        this.subscription = tracker.usage$.subscribe(callback);
        break;
      case 'pressure$':
        this.subscription = tracker.pressure$.subscribe(callback);
        break;
      case 'collapsed$':
        this.subscription = this.account.collapsed$.subscribe(callback);
        break;
    }
    sampled(this.kind, this);
  }

  /** Inside the signal's callback. */
  private react(): void {
    if (this.ended || this.budget <= 0) return;
    this.budget--;
    const action = rng.pick(this.actions);
    faults.add(`reentrant ${this.signal}: ${action}`);
    try {
      switch (action) {
        case 'claim':
          this.claim(rng.between(1, 3000));
          break;
        case 'release':
          if (this.held > 0) {
            const bytes = rng.between(1, this.held);
            this.held -= bytes;
            this.participation.release(bytes);
          }
          break;
        case 'over-release':
          // Clamped by the tracker (a participant-error event, during which others may claim).
          {
            const bytes = this.held + 10;
            this.held = 0;
            this.participation.release(bytes);
          }
          break;
        case 'close-participation':
          this.held = 0;
          this.participation.close();
          break;
        case 'close-account':
          this.held = 0;
          this.account.close();
          break;
        case 'unsubscribe':
          this.subscription?.unsubscribe();
          break;
      }
    } catch (err) {
      // Refused because the participant or its account is gone: fine if it really is.
      if (!this.refusalAllowed(err)) violation(`${this.kind} #${this.id} (${this.signal}, ${action}): ${describeError(err)}`);
    }
  }

  /** The ledger moves before the books: the claim's own callbacks may re-enter and read it. */
  /** A refusal is right when the participant is gone, or its tracker is being shut down. */
  private refusalAllowed(err: unknown): boolean {
    if (!(err instanceof MemquotaError)) return false;
    return this.participation.closed || (err.kind === 'TrackerShutdown' && this.slot.ephemeral);
  }

  private claim(bytes: number): void {
    this.held += bytes;
    try {
      this.participation.claim(bytes);
    } catch (err) {
      this.held -= bytes;
      throw err;
    }
    this.oldest ??= this.slot.tracker.now();
    counters.valuesPushed++;
    this.pushed++;
  }

  push(): void {
    if (this.ended) return;
    if (this.participation.closed) return this.gone('torn down');
    try {
      this.claim(rng.between(1, 4000));
    } catch (err) {
      if (!this.refusalAllowed(err)) violation(`${this.kind} #${this.id}: claim threw ${describeError(err)}`);
    }
  }

  override step(): void {
    if (this.ended) return;
    this.budget = 1;
    if (this.participation.closed) return this.gone('torn down');
    if (this.participation.claimed !== this.held) {
      violation(`${this.kind} #${this.id} (${this.signal}): participation.claimed ${this.participation.claimed} but it holds ${this.held}`);
      this.held = this.participation.claimed;
    }
    if (this.held > 0 && rng.chance(0.3)) {
      const bytes = this.held;
      this.held = 0;
      this.participation.release(bytes);
      this.oldest = undefined;
      counters.valuesDelivered++;
    }
  }

  getOldest(): number | undefined {
    return this.held > 0 ? this.oldest : undefined;
  }

  reclaim(): Reclaimed {
    const bytes = this.held;
    this.held = 0;
    this.participation.release(bytes);
    this.oldest = undefined;
    return 'collapsing';
  }

  private gone(how: string): void {
    this.subscription?.unsubscribe();
    this.finish(`${this.kind}: ${how}`);
    this.account.close();
  }

  close(): void {
    if (this.ended) return;
    this.closedBy = 'unsubscribe';
    this.participation.close();
    this.gone('closed');
  }

  release(): void {
    this.close();
  }
}
