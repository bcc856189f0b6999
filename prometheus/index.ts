/**
 * `rxjs-memquota/prometheus`: a tracker's use, limits and reclamations as Prometheus metrics,
 * through [prom-client](https://github.com/siimon/prom-client) (an optional peer dependency:
 * install it to use this entry).
 *
 * ## The metrics
 * Every name below gets the `prefix` option in front (default: none).
 *
 * | metric | type | what | read from |
 * | --- | --- | --- | --- |
 * | `memquota_used_bytes` | gauge | bytes claimed by live participants | `tracker.used` at scrape |
 * | `memquota_max_bytes` | gauge | reclamation starts above this (`+Inf` when disabled) | `tracker.max` at scrape |
 * | `memquota_low_water_bytes` | gauge | reclamation stops at or below this | `tracker.lowWater` at scrape |
 * | `memquota_soft_max_bytes` | gauge | `pressure$` turns high above this | `tracker.softMax` at scrape |
 * | `memquota_pressure` | gauge | 1 while `pressure$` is `'high'`, else 0 | `tracker.pressure$` |
 * | `memquota_accounts` | gauge | accounts open | `tracker.stats` at scrape |
 * | `memquota_participants` | gauge | participants registered | `tracker.stats` at scrape |
 * | `memquota_reclaim_runs_total{cause}` | counter | reclamation runs, by `cause` (`quota`, `heap`, `stale`) | `reclaim-start` events |
 * | `memquota_victims_total` | counter | victim accounts chosen | `tracker.stats` at scrape |
 * | `memquota_reclaimed_bytes_total` | counter | bytes freed by reclamation | `tracker.stats` at scrape |
 * | `memquota_accounts_collapsed_total` | counter | accounts torn down by reclamation | `tracker.stats` at scrape |
 * | `memquota_participant_errors_total` | counter | `participant-error` events | `tracker.stats` at scrape |
 * | `memquota_reclaim_duration_seconds` | histogram | how long each run took, start to end | `reclaim-end` events |
 * | `memquota_account_used_bytes{account}` | gauge | bytes held by the accounts given to `trackAccount`, summed by name | `account.used` at scrape |
 *
 * The counters are the tracker's own (`tracker.stats`, counted since the tracker was created),
 * so they are exact whenever the collector was attached. Runs by cause are counted from
 * `reclaim-start` events, which only exist while someone listens: runs that happened before
 * the collector was attached appear once, as `cause="unknown"`, so that
 * `sum(memquota_reclaim_runs_total)` always equals `tracker.stats.reclaimRuns`. The three known
 * causes are always exported, at 0 until they happen, so alerts on them have a series to
 * watch. Durations are on the tracker's clock (`now` option, milliseconds by default) divided
 * by 1000.
 *
 * ## Several trackers in one registry
 * prom-client allows one metric per name in a registry. Trackers exported under the same
 * `prefix` into the same registry share the metrics and are told apart by their constant
 * `labels` (e.g. `{ tracker: 'ws' }` and `{ tracker: 'cache' }`); they must all use the same
 * label names, and no two may use the same label values. A different `prefix` gives separate
 * metrics instead. Anything else is refused with a `ConfigError` that says which rule was
 * broken, and nothing is registered.
 *
 * ## Lifetime and cost
 * The collector reads the tracker only when the registry is scraped, except for two
 * subscriptions: `events$` (for the run causes and durations; while it is subscribed the
 * tracker builds event objects for its reclamation, collapse and participant-error events,
 * never for claims) and `pressure$`. `dispose()` (or `using`) unsubscribes both and removes
 * this tracker's series; the last tracker of a registry and prefix to go removes the metrics
 * from the registry. A tracker that is shut down keeps reporting its final counters until the
 * collector is disposed.
 *
 * @module
 */
import { Counter, Gauge, Histogram, register as defaultRegistry, type Registry, type RegistryContentType } from 'prom-client';
import { ConfigError, type Account, type MemoryQuotaTracker, type ReclaimCause } from '../index.js';
import { CAUSES, DURATION_BUCKETS, TrackerReading, checkTracker, disposeSymbol, kindOf } from './common.js';

/**
 * The default buckets of `memquota_reclaim_duration_seconds`, in seconds: 100 µs to 10 s.
 * A run over a handful of victims takes well under a millisecond; one that waits for
 * asynchronous `reclaim()` answers takes as long as they do.
 */
export const RECLAIM_DURATION_BUCKETS: readonly number[] = DURATION_BUCKETS;

/** Options of {@link collectMemquotaMetrics}. */
export interface CollectMemquotaMetricsOptions {
  /** Where the metrics are registered. Default: prom-client's global `register`. */
  readonly registry?: Registry<RegistryContentType>;
  /**
   * Put in front of every metric name, verbatim (`'myapp_'` gives `myapp_memquota_used_bytes`).
   * Default `''`. Must itself be a valid start of a Prometheus metric name.
   */
  readonly prefix?: string;
  /**
   * Constant labels on every series of this tracker, e.g. `{ tracker: 'ws' }`: how several
   * trackers share one registry and prefix. Names as Prometheus allows, except `cause`,
   * `account` and `le`, which these metrics use themselves.
   */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Bucket upper bounds (seconds) of `memquota_reclaim_duration_seconds`. Default
   * {@link RECLAIM_DURATION_BUCKETS}. Trackers sharing a registry and prefix share the
   * histogram, so they must agree on the buckets.
   */
  readonly buckets?: readonly number[];
}

/** The handle {@link collectMemquotaMetrics} returns: dispose it to stop exporting the tracker. */
export interface MemquotaMetrics extends Disposable {
  /** The full names of the metrics this tracker is exported under (prefix included). */
  readonly names: readonly string[];
  /**
   * Exports `account.used` as `memquota_account_used_bytes{account="<name>"}` from now on,
   * summed over every tracked account of the same name, until the account is torn down.
   * Meant for a few long-lived accounts, or for many accounts sharing a handful of names
   * (`'ws-client'`): each distinct name is one series. Holds the account only weakly
   * (`downgrade()`): tracking never keeps an account open. Note that `account.used` counts the
   * account's own participants, not its children's. Tracking an account twice counts it once;
   * after `dispose()` this does nothing.
   *
   * ## Example
   * ```ts
   * import { collectMemquotaMetrics } from 'rxjs-memquota/prometheus';
   *
   * const metrics = collectMemquotaMetrics(tracker, { registry });
   * const clients = tracker.newAccount({ name: 'ws-clients' });
   * wss.on('connection', (socket) => {
   *   const account = clients.newChild({ name: 'ws-client' });
   *   metrics.trackAccount(account); // one series, account="ws-client": every client, summed
   *   socket.once('close', () => account.close());
   * });
   * ```
   *
   * @param account A named, open account of this collector's tracker.
   * @throws TypeError for an account without a name, of another tracker, or already closed.
   */
  trackAccount(account: Account): void;
  /** Unsubscribes from the tracker and removes its series (idempotent). */
  dispose(): void;
}

/**
 * Exports a tracker's use, limits and reclamations to a prom-client registry.
 *
 * Gauges and counters are read from the tracker when the registry is scraped; the run causes,
 * the pressure state and the run durations are fed from `events$` and `pressure$`.
 *
 * ## Example
 * ```ts
 * import { createServer } from 'node:http';
 * import { Registry } from 'prom-client';
 * import { MemoryQuotaTracker } from 'rxjs-memquota';
 * import { collectMemquotaMetrics } from 'rxjs-memquota/prometheus';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 512 * 1024 * 1024 });
 * const registry = new Registry();
 * const metrics = collectMemquotaMetrics(tracker, { registry, labels: { tracker: 'ws' } });
 *
 * const clients = tracker.newAccount({ name: 'ws-clients' });
 * metrics.trackAccount(clients);
 *
 * createServer(async (_req, res) => {
 *   res.setHeader('Content-Type', registry.contentType);
 *   res.end(await registry.metrics()); // memquota_used_bytes{tracker="ws"} 0 ...
 * }).listen(9464);
 * ```
 *
 * @see {@link MemquotaMetrics}
 * @param tracker The tracker to export.
 * @param options `registry`, `prefix`, constant `labels`, histogram `buckets`.
 * @return A handle: `dispose()` it (or `using`) to stop exporting; `trackAccount(account)`
 *   adds a per-account gauge.
 * @throws TypeError if `tracker` is not a `MemoryQuotaTracker`.
 * @throws ConfigError for an invalid prefix, label or bucket list, or when the registry already
 *   holds these metric names for something else (another prefix user with other label names,
 *   a tracker with the same label values, the same tracker, or a foreign metric).
 */
export function collectMemquotaMetrics(tracker: MemoryQuotaTracker, options: CollectMemquotaMetricsOptions = {}): MemquotaMetrics {
  checkTracker(tracker);
  if (options === null || typeof options !== 'object') {
    throw new ConfigError([], `options must be an object, got ${kindOf(options)}`);
  }
  const registry = options.registry ?? defaultRegistry;
  if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function') {
    throw new ConfigError(['registry'], 'registry must be a prom-client Registry');
  }
  const prefix = checkPrefix(options.prefix);
  const labels = checkLabels(options.labels);
  const buckets = checkBuckets(options.buckets);

  const family = familyFor(registry, prefix, Object.keys(labels).sort(), buckets);
  family.admit(tracker, labels);
  return new Handle(family, family.add(tracker, labels));
}

// ---------------------------------------------------------------------------------------------
// Argument checks

const RESERVED_LABELS = new Set(['cause', 'account', 'le']);
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkPrefix(prefix: unknown): string {
  if (prefix === undefined) return '';
  if (typeof prefix !== 'string') throw new ConfigError(['prefix'], `prefix must be a string, got ${typeof prefix}`);
  if (prefix !== '' && !METRIC_NAME.test(prefix)) {
    throw new ConfigError(['prefix'], `prefix '${prefix}' is not a valid start of a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)`);
  }
  return prefix;
}

function checkLabels(labels: unknown): Readonly<Record<string, string>> {
  if (labels === undefined) return {};
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw new ConfigError(['labels'], `labels must be an object of label names to string values, got ${kindOf(labels)}`);
  }
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new ConfigError(['labels'], `label name '${name}' is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)`);
    }
    if (RESERVED_LABELS.has(name)) {
      throw new ConfigError(['labels'], `label name '${name}' is used by the memquota metrics themselves; choose another`);
    }
    if (typeof value !== 'string') throw new ConfigError(['labels'], `label '${name}' must have a string value, got ${typeof value}`);
    copy[name] = value;
  }
  return Object.freeze(copy);
}

function checkBuckets(buckets: unknown): readonly number[] {
  if (buckets === undefined) return RECLAIM_DURATION_BUCKETS;
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    !buckets.every((b, i) => typeof b === 'number' && Number.isFinite(b) && b > 0 && (i === 0 || b > (buckets[i - 1] as number)))
  ) {
    throw new ConfigError(['buckets'], 'buckets must be a non-empty list of increasing positive finite numbers (seconds)');
  }
  return Object.freeze([...(buckets as number[])]);
}

// ---------------------------------------------------------------------------------------------
// One tracker's state

/** What the collector keeps per tracker: its labels, and what only events tell. */
class Source extends TrackerReading {
  /** The label sets of the runs counter, one per cause. */
  readonly causeLabels: Record<ReclaimCause | 'unknown', Record<string, string>>;

  constructor(
    tracker: MemoryQuotaTracker,
    readonly labels: Readonly<Record<string, string>>,
    durations: Histogram,
  ) {
    super(tracker, (seconds) => durations.observe(labels, seconds));
    this.causeLabels = {
      quota: { ...labels, cause: 'quota' },
      heap: { ...labels, cause: 'heap' },
      stale: { ...labels, cause: 'stale' },
      unknown: { ...labels, cause: 'unknown' },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The metrics of one registry and prefix, shared by the trackers exported there

const families = new WeakMap<Registry<RegistryContentType>, Map<string, Family>>();

function familyFor(registry: Registry<RegistryContentType>, prefix: string, labelNames: string[], buckets: readonly number[]): Family {
  let byPrefix = families.get(registry);
  if (byPrefix === undefined) families.set(registry, (byPrefix = new Map()));
  const existing = byPrefix.get(prefix);
  // Someone may have cleared the registry (`registry.clear()`): then our metrics are gone.
  if (existing !== undefined && existing.registered()) {
    const same = (a: readonly (string | number)[], b: readonly (string | number)[]): boolean =>
      a.length === b.length && a.every((x, i) => x === b[i]);
    if (!same(existing.labelNames, labelNames)) {
      throw new ConfigError(
        ['labels'],
        `this registry already exports memquota metrics under prefix '${prefix}' with label names [${existing.labelNames.join(', ')}]; ` +
          `every tracker there must use the same label names (got [${labelNames.join(', ')}]), or use another prefix`,
      );
    }
    if (!same(existing.buckets, buckets)) {
      throw new ConfigError(['buckets'], `this registry already exports ${prefix}memquota_reclaim_duration_seconds with other buckets; trackers sharing a prefix share the histogram`);
    }
    return existing;
  }
  const family = new Family(registry, prefix, labelNames, buckets);
  byPrefix.set(prefix, family);
  return family;
}

class Family {
  readonly sources = new Set<Source>();
  private readonly metrics: (Gauge | Counter | Histogram)[];
  readonly durations: Histogram;

  constructor(
    readonly registry: Registry<RegistryContentType>,
    readonly prefix: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    const sources = this.sources;
    const gauge = (name: string, help: string, read: (s: Source) => number): Gauge =>
      new Gauge({
        name: prefix + name,
        help,
        labelNames,
        registers: [],
        collect() {
          this.reset();
          for (const s of sources) this.set(s.labels, read(s));
        },
      });
    const counter = (name: string, help: string, read: (s: Source) => number): Counter =>
      new Counter({
        name: prefix + name,
        help,
        labelNames,
        registers: [],
        // The tracker's counters are monotonic: exporting the snapshot as the counter's value
        // is exact, and a disposed tracker's series goes with it.
        collect() {
          this.reset();
          for (const s of sources) this.inc(s.labels, read(s));
        },
      });
    this.durations = new Histogram({
      name: `${prefix}memquota_reclaim_duration_seconds`,
      help: 'How long each reclamation run took, from its start to its end, in seconds of the tracker clock.',
      labelNames,
      buckets: [...buckets],
      registers: [],
    });
    this.metrics = [
      gauge('memquota_used_bytes', 'Bytes claimed by live participants of the memory quota tracker.', (s) => s.tracker.used),
      gauge('memquota_max_bytes', 'Reclamation starts when used passes this (+Inf: tracking disabled).', (s) => s.tracker.max),
      gauge('memquota_low_water_bytes', 'Reclamation goes on until used is at or below this.', (s) => s.tracker.lowWater),
      gauge('memquota_soft_max_bytes', 'Pressure turns high when used passes this.', (s) => s.tracker.softMax),
      gauge('memquota_pressure', '1 while the pressure tier is high (used passed softMax, not yet back under lowWater), else 0.', (s) => s.pressure),
      gauge('memquota_accounts', 'Accounts currently open.', (s) => s.tracker.stats.accounts),
      gauge('memquota_participants', 'Participants currently registered.', (s) => s.tracker.stats.participants),
      new Counter({
        name: `${prefix}memquota_reclaim_runs_total`,
        help: 'Reclamation runs started, by cause (quota, heap, stale; unknown: before metrics were collected).',
        labelNames: [...labelNames, 'cause'],
        registers: [],
        collect() {
          this.reset();
          for (const s of sources) {
            for (const cause of CAUSES) this.inc(s.causeLabels[cause], s.runsByCause[cause]);
            if (s.runsBefore > 0) this.inc(s.causeLabels.unknown, s.runsBefore);
          }
        },
      }),
      counter('memquota_victims_total', 'Victim accounts chosen by reclamation.', (s) => s.tracker.stats.victims),
      counter('memquota_reclaimed_bytes_total', 'Bytes freed by reclamation.', (s) => s.tracker.stats.bytesReclaimed),
      counter('memquota_accounts_collapsed_total', 'Accounts torn down by reclamation.', (s) => s.tracker.stats.accountsCollapsed),
      counter('memquota_participant_errors_total', 'Participants that misbehaved (participant-error events).', (s) => s.tracker.stats.participantErrors),
      this.durations,
      new Gauge({
        name: `${prefix}memquota_account_used_bytes`,
        help: 'Bytes held by the own participants of the tracked accounts, summed by account name.',
        labelNames: [...labelNames, 'account'],
        registers: [],
        collect() {
          this.reset();
          for (const s of sources) {
            for (const [name, used] of s.accountUseByName()) this.set({ ...s.labels, account: name }, used);
          }
        },
      }),
    ];
    // All or nothing: a foreign metric under one of our names leaves the registry untouched.
    for (const metric of this.metrics) {
      const name = (metric as unknown as { name: string }).name;
      if (registry.getSingleMetric(name) !== undefined) {
        throw new ConfigError(['prefix'], `the registry already has a metric named '${name}' that rxjs-memquota did not register; use another prefix`);
      }
    }
    for (const metric of this.metrics) registry.registerMetric(metric);
  }

  /** The full names of the metrics. */
  get names(): string[] {
    return this.metrics.map((m) => (m as unknown as { name: string }).name);
  }

  /** Whether the registry still holds these metrics (it may have been cleared). */
  registered(): boolean {
    return this.names.every((name, i) => this.registry.getSingleMetric(name) === this.metrics[i]);
  }

  /** Refuses a tracker that would clash with one already exported here. */
  admit(tracker: MemoryQuotaTracker, labels: Readonly<Record<string, string>>): void {
    for (const s of this.sources) {
      if (s.tracker === tracker) {
        throw new ConfigError([], `this tracker is already exported to this registry under prefix '${this.prefix}'; dispose that collector first`);
      }
      if (this.labelNames.every((name) => s.labels[name] === labels[name])) {
        const shown = JSON.stringify(labels);
        throw new ConfigError(
          ['labels'],
          `another tracker is already exported to this registry under prefix '${this.prefix}' with labels ${shown}; ` +
            `give each tracker distinct constant labels (e.g. { tracker: 'ws' }) or a distinct prefix`,
        );
      }
    }
  }

  /** Starts exporting a tracker (after {@link admit}). */
  add(tracker: MemoryQuotaTracker, labels: Readonly<Record<string, string>>): Source {
    const source = new Source(tracker, labels, this.durations);
    this.sources.add(source);
    // Every tracker's histogram series exists from the start, at 0, as its counters do.
    this.durations.zero(labels);
    return source;
  }

  /** Stops exporting a tracker: its series go; the metrics go with the last tracker. */
  remove(source: Source): void {
    source.close();
    if (!this.sources.delete(source)) return;
    if (this.sources.size > 0) {
      // The scrape-time metrics forget the source by themselves; the histogram keeps series.
      if (this.labelNames.length > 0) this.durations.remove(source.labels);
      return;
    }
    const byPrefix = families.get(this.registry);
    if (byPrefix?.get(this.prefix) === this) byPrefix.delete(this.prefix);
    if (this.registered()) for (const name of this.names) this.registry.removeSingleMetric(name);
  }
}

// ---------------------------------------------------------------------------------------------
// The handle

class Handle implements MemquotaMetrics {
  readonly names: readonly string[];

  constructor(
    private readonly family: Family,
    private readonly source: Source,
  ) {
    this.names = Object.freeze(family.names);
  }

  trackAccount(account: Account): void {
    this.source.trackAccount(account);
  }

  dispose(): void {
    this.family.remove(this.source);
  }

  [disposeSymbol](): void {
    this.dispose();
  }
}
