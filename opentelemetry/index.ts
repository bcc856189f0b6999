/**
 * `rxjs-memquota/opentelemetry`: a tracker's use, limits and reclamations as OpenTelemetry
 * metrics, through any `Meter` of [`@opentelemetry/api`](https://opentelemetry.io/docs/languages/js/)
 * (an optional peer dependency; this entry only uses its types, the meter is yours).
 *
 * ## The instruments
 * Every name below gets the `prefix` option in front (default: none). The names follow
 * OpenTelemetry's conventions (dots, a unit beside the name) and translate to the Prometheus
 * names of `rxjs-memquota/prometheus` under the OpenTelemetry specification's Prometheus
 * translation (dots to `_`, unit `By` to `_bytes`, `s` to `_seconds`, `_total` on monotonic
 * sums, `{…}` annotations dropped), which the Collector's Prometheus exporters apply by
 * default, so dashboards and alerts carry over. The JavaScript `@opentelemetry/exporter-prometheus`
 * (0.218) adds `_total` but no unit suffix: there the byte gauges are `memquota_used`,
 * `memquota_max`, `memquota_low_water`, `memquota_soft_max`, `memquota_account_used`, and
 * `memquota_reclaimed_total`, `memquota_reclaim_duration` (use `rxjs-memquota/prometheus` for
 * the exact Prometheus names).
 *
 * | instrument | kind | unit | Prometheus name |
 * | --- | --- | --- | --- |
 * | `memquota.used` | observable gauge | `By` | `memquota_used_bytes` |
 * | `memquota.max` | observable gauge | `By` | `memquota_max_bytes` |
 * | `memquota.low_water` | observable gauge | `By` | `memquota_low_water_bytes` |
 * | `memquota.soft_max` | observable gauge | `By` | `memquota_soft_max_bytes` |
 * | `memquota.pressure` | observable gauge (0/1) | | `memquota_pressure` |
 * | `memquota.accounts` | observable gauge | `{account}` | `memquota_accounts` |
 * | `memquota.participants` | observable gauge | `{participant}` | `memquota_participants` |
 * | `memquota.reclaim.runs` (attribute `cause`) | observable counter | `{run}` | `memquota_reclaim_runs_total{cause}` |
 * | `memquota.victims` | observable counter | `{account}` | `memquota_victims_total` |
 * | `memquota.reclaimed` | observable counter | `By` | `memquota_reclaimed_bytes_total` |
 * | `memquota.accounts.collapsed` | observable counter | `{account}` | `memquota_accounts_collapsed_total` |
 * | `memquota.participant.errors` | observable counter | `{error}` | `memquota_participant_errors_total` |
 * | `memquota.reclaim.duration` | histogram | `s` | `memquota_reclaim_duration_seconds` |
 * | `memquota.account.used` (attribute `account`) | observable gauge | `By` | `memquota_account_used_bytes{account}` |
 *
 * What each one means, and where it is read from, is the same as in
 * `rxjs-memquota/prometheus`: gauges and counters read the tracker (`tracker.stats`, counted
 * since the tracker was created) in one batch callback at collection time; run causes come
 * from `reclaim-start` events, with runs from before the observer was attached reported once
 * as `cause: 'unknown'`; durations come from `reclaim-end` events (tracker clock / 1000). A
 * disabled tracker (`noop()`, `max: Infinity`) observes no `max`, `low_water` and `soft_max`
 * (OpenTelemetry exporters do not all carry infinities).
 *
 * ## Several trackers on one meter
 * Give each its own constant `attributes` (e.g. `{ tracker: 'ws' }`) or its own `prefix`. The
 * same tracker twice, or two trackers with the same attributes under one prefix, would report
 * the same series twice: refused with a `ConfigError`.
 *
 * ## Lifetime
 * `dispose()` (or `using`) removes the batch callback and unsubscribes from the tracker. The
 * OpenTelemetry API cannot take an instrument back from a meter: the duration histogram stays
 * on the meter, and this tracker simply stops recording into it.
 *
 * @module
 */
import type { Attributes, BatchObservableResult, Histogram, Meter, Observable, ObservableCounter, ObservableGauge } from '@opentelemetry/api';
import { ConfigError, type Account, type MemoryQuotaTracker, type ReclaimCause } from '../index.js';
import { CAUSES, DURATION_BUCKETS, TrackerReading, checkTracker, disposeSymbol, kindOf } from '../prometheus/common.js';

/**
 * The default bucket boundaries of `memquota.reclaim.duration`, in seconds (100 µs to 10 s),
 * given to the SDK as advice; a View can override them. The same as the Prometheus entry's.
 */
export const RECLAIM_DURATION_BOUNDARIES: readonly number[] = DURATION_BUCKETS;

/** Options of {@link observeMemquotaMetrics}. */
export interface ObserveMemquotaMetricsOptions {
  /** The meter the instruments are created on, e.g. `metrics.getMeter('my-service')`. */
  readonly meter: Meter;
  /**
   * Put in front of every instrument name, verbatim (`'myapp.'` gives `myapp.memquota.used`).
   * Default `''`. Must itself be a valid start of an instrument name.
   */
  readonly prefix?: string;
  /**
   * Constant attributes on every measurement of this tracker, e.g. `{ tracker: 'ws' }`: how
   * several trackers share one meter. Not `cause` or `account`, which the instruments use.
   */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** The handle {@link observeMemquotaMetrics} returns: dispose it to stop observing the tracker. */
export interface MemquotaInstruments extends Disposable {
  /** The full names of the instruments (prefix included). */
  readonly names: readonly string[];
  /**
   * Observes `account.used` as `memquota.account.used` with attribute `account: <name>` from
   * now on, summed over every tracked account of the same name, until the account is torn
   * down. Holds the account only weakly; tracking an account twice counts it once; after
   * `dispose()` this does nothing. `account.used` counts the account's own participants, not
   * its children's. Each distinct name is one series: track a few long-lived accounts, or
   * many that share a handful of names.
   *
   * ## Example
   * ```ts
   * import { observeMemquotaMetrics } from 'rxjs-memquota/opentelemetry';
   *
   * const metrics = observeMemquotaMetrics(tracker, { meter });
   * const clients = tracker.newAccount({ name: 'ws-clients' });
   * wss.on('connection', (socket) => {
   *   const account = clients.newChild({ name: 'ws-client' });
   *   metrics.trackAccount(account); // one series, account="ws-client": every client, summed
   *   socket.once('close', () => account.close());
   * });
   * ```
   *
   * @param account A named, open account of this observer's tracker.
   * @throws TypeError for an account without a name, of another tracker, or already closed.
   */
  trackAccount(account: Account): void;
  /** Removes the callback and unsubscribes from the tracker (idempotent). */
  dispose(): void;
}

/**
 * Observes a tracker's use, limits and reclamations through an OpenTelemetry `Meter`.
 *
 * Observable gauges and counters are read from the tracker in one batch callback whenever the
 * SDK collects; the run causes, the pressure state and the run durations are fed from
 * `events$` and `pressure$`.
 *
 * ## Example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import { MemoryQuotaTracker } from 'rxjs-memquota';
 * import { observeMemquotaMetrics } from 'rxjs-memquota/opentelemetry';
 *
 * // With a MeterProvider registered by your OpenTelemetry SDK setup:
 * const tracker = MemoryQuotaTracker.create({ max: 512 * 1024 * 1024 });
 * const instruments = observeMemquotaMetrics(tracker, {
 *   meter: metrics.getMeter('my-service'),
 *   attributes: { tracker: 'ws' },
 * });
 * instruments.trackAccount(tracker.newAccount({ name: 'ws-clients' }));
 * // ... on shutdown:
 * instruments.dispose();
 * ```
 *
 * @see {@link MemquotaInstruments}
 * @param tracker The tracker to observe.
 * @param options The `meter`, a name `prefix`, constant `attributes`.
 * @return A handle: `dispose()` it (or `using`) to stop observing; `trackAccount(account)` adds
 *   per-account use.
 * @throws TypeError if `tracker` is not a `MemoryQuotaTracker`.
 * @throws ConfigError for a missing meter, an invalid prefix or attribute, or when this tracker,
 *   or another one with the same attributes, is already observed on this meter and prefix.
 */
export function observeMemquotaMetrics(tracker: MemoryQuotaTracker, options: ObserveMemquotaMetricsOptions): MemquotaInstruments {
  checkTracker(tracker);
  if (options === null || typeof options !== 'object') {
    throw new ConfigError(['meter'], `options must be an object with a meter, got ${kindOf(options)}`);
  }
  const meter = options.meter;
  if (
    meter === null ||
    typeof meter !== 'object' ||
    typeof meter.createObservableGauge !== 'function' ||
    typeof meter.addBatchObservableCallback !== 'function'
  ) {
    throw new ConfigError(['meter'], 'meter must be an OpenTelemetry Meter (metrics.getMeter(name) of @opentelemetry/api)');
  }
  const prefix = checkPrefix(options.prefix);
  const attributes = checkAttributes(options.attributes);
  const key = JSON.stringify(Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const observed = observedOn(meter, prefix);
  for (const other of observed) {
    if (other.tracker === tracker) {
      throw new ConfigError([], `this tracker is already observed on this meter under prefix '${prefix}'; dispose that observer first`);
    }
    if (other.key === key) {
      throw new ConfigError(
        ['attributes'],
        `another tracker is already observed on this meter under prefix '${prefix}' with attributes ${JSON.stringify(attributes)}; ` +
          `give each tracker distinct attributes (e.g. { tracker: 'ws' }) or a distinct prefix`,
      );
    }
  }
  const registration = { tracker, key };
  observed.add(registration);
  return new Observer(meter, prefix, tracker, attributes, () => observed.delete(registration));
}

// ---------------------------------------------------------------------------------------------
// Argument checks

const RESERVED_ATTRIBUTES = new Set(['cause', 'account']);
const INSTRUMENT_NAME_START = /^[a-zA-Z][-_./a-zA-Z0-9]*$/;

function checkPrefix(prefix: unknown): string {
  if (prefix === undefined) return '';
  if (typeof prefix !== 'string') throw new ConfigError(['prefix'], `prefix must be a string, got ${typeof prefix}`);
  if (prefix !== '' && !INSTRUMENT_NAME_START.test(prefix)) {
    throw new ConfigError(['prefix'], `prefix '${prefix}' is not a valid start of an OpenTelemetry instrument name ([a-zA-Z][-_./a-zA-Z0-9]*)`);
  }
  return prefix;
}

function checkAttributes(attributes: unknown): Readonly<Record<string, string>> {
  if (attributes === undefined) return {};
  if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) {
    throw new ConfigError(['attributes'], `attributes must be an object of names to string values, got ${kindOf(attributes)}`);
  }
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (name === '') throw new ConfigError(['attributes'], 'an attribute name must not be empty');
    if (RESERVED_ATTRIBUTES.has(name)) {
      throw new ConfigError(['attributes'], `attribute '${name}' is used by the memquota instruments themselves; choose another`);
    }
    if (typeof value !== 'string') throw new ConfigError(['attributes'], `attribute '${name}' must have a string value, got ${typeof value}`);
    copy[name] = value;
  }
  return Object.freeze(copy);
}

/** The trackers observed on a meter under a prefix, to refuse duplicate series. */
const observedByMeter = new WeakMap<Meter, Map<string, Set<{ readonly tracker: MemoryQuotaTracker; readonly key: string }>>>();

function observedOn(meter: Meter, prefix: string): Set<{ readonly tracker: MemoryQuotaTracker; readonly key: string }> {
  let byPrefix = observedByMeter.get(meter);
  if (byPrefix === undefined) observedByMeter.set(meter, (byPrefix = new Map()));
  let set = byPrefix.get(prefix);
  if (set === undefined) byPrefix.set(prefix, (set = new Set()));
  return set;
}

// ---------------------------------------------------------------------------------------------
// One tracker's instruments

class Observer implements MemquotaInstruments {
  readonly names: readonly string[];
  private readonly reading: TrackerReading;
  private readonly causeAttributes: Record<ReclaimCause | 'unknown', Attributes>;
  private readonly gauges: {
    readonly used: ObservableGauge;
    readonly max: ObservableGauge;
    readonly lowWater: ObservableGauge;
    readonly softMax: ObservableGauge;
    readonly pressure: ObservableGauge;
    readonly accounts: ObservableGauge;
    readonly participants: ObservableGauge;
    readonly accountUsed: ObservableGauge;
  };
  private readonly counters: {
    readonly runs: ObservableCounter;
    readonly victims: ObservableCounter;
    readonly reclaimed: ObservableCounter;
    readonly collapsed: ObservableCounter;
    readonly errors: ObservableCounter;
  };
  private readonly durations: Histogram;
  private readonly observables: Observable[];
  private readonly callback = (result: BatchObservableResult): void => this.observe(result);

  constructor(
    private readonly meter: Meter,
    prefix: string,
    private readonly tracker: MemoryQuotaTracker,
    private readonly attributes: Attributes,
    private readonly unregister: () => void,
  ) {
    const gauge = (name: string, unit: string, description: string): ObservableGauge =>
      meter.createObservableGauge(prefix + name, unit === '' ? { description } : { description, unit });
    const counter = (name: string, unit: string, description: string): ObservableCounter =>
      meter.createObservableCounter(prefix + name, { description, unit });
    this.gauges = {
      used: gauge('memquota.used', 'By', 'Bytes claimed by live participants of the memory quota tracker.'),
      max: gauge('memquota.max', 'By', 'Reclamation starts when used passes this.'),
      lowWater: gauge('memquota.low_water', 'By', 'Reclamation goes on until used is at or below this.'),
      softMax: gauge('memquota.soft_max', 'By', 'Pressure turns high when used passes this.'),
      pressure: gauge('memquota.pressure', '', '1 while the pressure tier is high (used passed softMax, not yet back under lowWater), else 0.'),
      accounts: gauge('memquota.accounts', '{account}', 'Accounts currently open.'),
      participants: gauge('memquota.participants', '{participant}', 'Participants currently registered.'),
      accountUsed: gauge('memquota.account.used', 'By', 'Bytes held by the own participants of the tracked accounts, summed by account name.'),
    };
    this.counters = {
      runs: counter('memquota.reclaim.runs', '{run}', 'Reclamation runs started, by cause (quota, heap, stale; unknown: before metrics were observed).'),
      victims: counter('memquota.victims', '{account}', 'Victim accounts chosen by reclamation.'),
      reclaimed: counter('memquota.reclaimed', 'By', 'Bytes freed by reclamation.'),
      collapsed: counter('memquota.accounts.collapsed', '{account}', 'Accounts torn down by reclamation.'),
      errors: counter('memquota.participant.errors', '{error}', 'Participants that misbehaved (participant-error events).'),
    };
    this.durations = meter.createHistogram(`${prefix}memquota.reclaim.duration`, {
      description: 'How long each reclamation run took, from its start to its end, in seconds of the tracker clock.',
      unit: 's',
      advice: { explicitBucketBoundaries: [...RECLAIM_DURATION_BOUNDARIES] },
    });
    this.names = Object.freeze(
      [
        'memquota.used',
        'memquota.max',
        'memquota.low_water',
        'memquota.soft_max',
        'memquota.pressure',
        'memquota.accounts',
        'memquota.participants',
        'memquota.reclaim.runs',
        'memquota.victims',
        'memquota.reclaimed',
        'memquota.accounts.collapsed',
        'memquota.participant.errors',
        'memquota.reclaim.duration',
        'memquota.account.used',
      ].map((name) => prefix + name),
    );
    this.causeAttributes = {
      quota: { ...attributes, cause: 'quota' },
      heap: { ...attributes, cause: 'heap' },
      stale: { ...attributes, cause: 'stale' },
      unknown: { ...attributes, cause: 'unknown' },
    };
    this.observables = [...Object.values(this.gauges), ...Object.values(this.counters)];
    const durations = this.durations;
    this.reading = new TrackerReading(tracker, (seconds) => durations.record(seconds, attributes));
    meter.addBatchObservableCallback(this.callback, this.observables);
  }

  /** The batch callback: one read of the tracker per collection. */
  private observe(result: BatchObservableResult): void {
    const { tracker, reading, attributes, gauges, counters } = this;
    const stats = tracker.stats;
    result.observe(gauges.used, tracker.used, attributes);
    if (tracker.enabled) {
      result.observe(gauges.max, tracker.max, attributes);
      result.observe(gauges.lowWater, tracker.lowWater, attributes);
      result.observe(gauges.softMax, tracker.softMax, attributes);
    }
    result.observe(gauges.pressure, reading.pressure, attributes);
    result.observe(gauges.accounts, stats.accounts, attributes);
    result.observe(gauges.participants, stats.participants, attributes);
    for (const cause of CAUSES) result.observe(counters.runs, reading.runsByCause[cause], this.causeAttributes[cause]);
    if (reading.runsBefore > 0) result.observe(counters.runs, reading.runsBefore, this.causeAttributes.unknown);
    result.observe(counters.victims, stats.victims, attributes);
    result.observe(counters.reclaimed, stats.bytesReclaimed, attributes);
    result.observe(counters.collapsed, stats.accountsCollapsed, attributes);
    result.observe(counters.errors, stats.participantErrors, attributes);
    for (const [name, used] of reading.accountUseByName()) result.observe(gauges.accountUsed, used, { ...attributes, account: name });
  }

  trackAccount(account: Account): void {
    this.reading.trackAccount(account);
  }

  dispose(): void {
    if (this.reading.closed) return;
    this.reading.close();
    this.meter.removeBatchObservableCallback(this.callback, this.observables);
    this.unregister();
  }

  [disposeSymbol](): void {
    this.dispose();
  }
}
