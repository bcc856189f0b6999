/**
 * What both metric exporters (`rxjs-memquota/prometheus`, `rxjs-memquota/opentelemetry`) read
 * of a tracker, with no metrics library: the state that only `events$` and `pressure$` tell,
 * and the accounts given to `trackAccount`. Internal; the OpenTelemetry entry imports it too.
 *
 * @module
 * @internal
 */
import type { Subscription } from 'rxjs';
import type { Account, MemoryQuotaTracker, MemquotaEvent, ReclaimCause, WeakAccount } from '../index.js';

/** Bucket upper bounds of the reclaim duration histogram, in seconds: 100 µs to 10 s. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** The causes of a reclamation run, always exported (at 0 until they happen). */
export const CAUSES: readonly ReclaimCause[] = ['quota', 'heap', 'stale'];

/** `Symbol.dispose`, or its registered stand-in where the runtime lacks it. */
export const disposeSymbol: typeof Symbol.dispose =
  (Symbol as { dispose?: typeof Symbol.dispose }).dispose ?? (Symbol.for('Symbol.dispose') as typeof Symbol.dispose);

/** Throws a TypeError unless `tracker` looks like a `MemoryQuotaTracker`. */
export function checkTracker(tracker: unknown): asserts tracker is MemoryQuotaTracker {
  const t = tracker as Partial<MemoryQuotaTracker> | null;
  if (
    t === null ||
    typeof t !== 'object' ||
    typeof t.audit !== 'function' ||
    typeof t.events$?.subscribe !== 'function' ||
    typeof t.pressure$?.subscribe !== 'function'
  ) {
    throw new TypeError(`tracker must be a MemoryQuotaTracker of rxjs-memquota, got ${tracker === null ? 'null' : typeof tracker}`);
  }
}

/** How `typeof` names a value in an error message (`null` apart). */
export function kindOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/**
 * One exported tracker: what it says through events (runs by cause, durations handed to
 * `onDuration`), its pressure state, and the tracked accounts. Reading `tracker.used` or
 * `tracker.stats` is left to the exporter, at collection time.
 */
export class TrackerReading {
  /** 1 while `pressure$` says `'high'`, else 0 (also after the tracker shut down). */
  pressure = 0;
  /** `reclaim-start` events seen since subscribing, by cause. */
  readonly runsByCause: Record<ReclaimCause, number> = { quota: 0, heap: 0, stale: 0 };
  /** Runs the tracker had done before this reading subscribed: exported as cause `unknown`. */
  readonly runsBefore: number;
  private readonly accounts = new Map<number, { readonly weak: WeakAccount; readonly name: string }>();
  /** When the tracked-account map reaches this size, torn-down entries are swept first. */
  private sweepAt = 64;
  private subscriptions: Subscription[] | null;

  /**
   * Subscribes to the tracker's `pressure$` and `events$` until {@link close}.
   *
   * @param onDuration Called with each run's duration, in seconds (tracker clock / 1000).
   */
  constructor(
    readonly tracker: MemoryQuotaTracker,
    onDuration: (seconds: number) => void,
  ) {
    this.runsBefore = tracker.stats.reclaimRuns;
    this.subscriptions = [
      tracker.pressure$.subscribe({
        next: (state) => (this.pressure = state === 'high' ? 1 : 0),
        complete: () => (this.pressure = 0),
      }),
      tracker.events$.subscribe((event: MemquotaEvent) => {
        if (event.type === 'reclaim-start') {
          if (event.cause in this.runsByCause) this.runsByCause[event.cause]++;
        } else if (event.type === 'reclaim-end') {
          onDuration(event.durationMs / 1000);
        }
      }),
    ];
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.subscriptions === null;
  }

  /** Unsubscribes and forgets the tracked accounts (idempotent). */
  close(): void {
    if (this.subscriptions === null) return;
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions = null;
    this.accounts.clear();
  }

  /**
   * Starts exporting a named account's `used` (weakly held; twice counts once; nothing after
   * {@link close}).
   *
   * @throws TypeError for a non-account, a closed or unnamed account, or one of another tracker.
   */
  trackAccount(account: Account): void {
    const a = account as Partial<Account> | null;
    if (a === null || typeof a !== 'object' || typeof a.downgrade !== 'function') {
      throw new TypeError(`trackAccount needs an Account of rxjs-memquota, got ${kindOf(account)}`);
    }
    if (account.closed) throw new TypeError('trackAccount: the account is closed');
    if (account.tracker !== this.tracker) throw new TypeError(`trackAccount: account ${account.id} belongs to another tracker`);
    const name = account.name;
    if (name === undefined) {
      throw new TypeError(`trackAccount: account ${account.id} has no name; open it with newAccount({ name }) or newChild({ name })`);
    }
    if (this.closed || this.accounts.has(account.id)) return;
    // Torn-down accounts leave at the next collection; without collections, every doubling
    // sweeps them, so the map stays within twice the live tracked accounts.
    if (this.accounts.size >= this.sweepAt) {
      for (const [id, { weak }] of this.accounts) if (weak.closed) this.accounts.delete(id);
      this.sweepAt = Math.max(64, 2 * this.accounts.size);
    }
    this.accounts.set(account.id, { weak: account.downgrade(), name });
  }

  /** The tracked accounts' `used`, summed by name; forgets the accounts that were torn down. */
  accountUseByName(): Map<string, number> {
    const byName = new Map<string, number>();
    for (const [id, { weak, name }] of this.accounts) {
      const used = usedOf(weak);
      if (used === undefined) this.accounts.delete(id);
      else byName.set(name, (byName.get(name) ?? 0) + used);
    }
    return byName;
  }
}

/** An account's `used` through a weak handle, or `undefined` once the account is gone. */
function usedOf(weak: WeakAccount): number | undefined {
  if (weak.closed) return undefined;
  try {
    // Only a full handle tells `used`; this one is closed at once and never escapes.
    const handle = weak.upgrade();
    const used = handle.used;
    handle.close();
    return used;
  } catch {
    return undefined; // the tracker was shut down or refuses work: nothing to report
  }
}
