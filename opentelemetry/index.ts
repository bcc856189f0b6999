// placeholder: replaced by the owner's file at merge
/**
 * OpenTelemetry metrics for a tracker, `rxjs-memquota/opentelemetry` (placeholder).
 *
 * @packageDocumentation
 */
import { metrics, type Meter } from '@opentelemetry/api';
import { MemoryQuotaTracker } from '../lib/tracker.js';

/**
 * Observes `memquota.used` (bytes) for `tracker` on an OpenTelemetry meter.
 *
 * @param tracker The tracker to observe.
 * @param meter The meter to create the instrument on; the global `rxjs-memquota` meter if omitted.
 * @return Nothing.
 */
export function observeMemquota(tracker: MemoryQuotaTracker, meter: Meter = metrics.getMeter('rxjs-memquota')): void {
  if (!(tracker instanceof MemoryQuotaTracker)) throw new TypeError('observeMemquota: tracker must be a MemoryQuotaTracker');
  meter
    .createObservableGauge('memquota.used', { unit: 'By', description: 'Bytes claimed by all live participants of the tracker.' })
    .addCallback((result) => result.observe(tracker.used));
}
