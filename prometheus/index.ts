// placeholder: replaced by the owner's file at merge
/**
 * Prometheus metrics for a tracker, `rxjs-memquota/prometheus` (placeholder).
 *
 * @packageDocumentation
 */
import { Gauge, register, type Registry } from 'prom-client';
import { MemoryQuotaTracker } from '../lib/tracker.js';

/** Options of {@link collectMemquotaMetrics}. */
export interface CollectMemquotaMetricsOptions {
  /** The registry to register in; prom-client's default registry if omitted. */
  registry?: Registry;
  /** A prefix for every metric name; empty by default. */
  prefix?: string;
}

/**
 * Registers `memquota_used_bytes` for `tracker` in a prom-client registry.
 *
 * @param tracker The tracker to observe.
 * @param options Registry and name prefix.
 * @return Nothing.
 */
export function collectMemquotaMetrics(tracker: MemoryQuotaTracker, options: CollectMemquotaMetricsOptions = {}): void {
  if (!(tracker instanceof MemoryQuotaTracker)) throw new TypeError('collectMemquotaMetrics: tracker must be a MemoryQuotaTracker');
  const { registry = register, prefix = '' } = options;
  new Gauge({
    name: `${prefix}memquota_used_bytes`,
    help: 'Bytes claimed by all live participants of the tracker.',
    registers: [registry],
    collect() {
      this.set(tracker.used);
    },
  });
}
