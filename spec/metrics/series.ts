/**
 * Reading metrics back, for the metrics specs: every series of a prom-client registry, keyed
 * as the exposition format writes it (`name{label="value",...}`, labels sorted by name).
 */
import type { Registry } from 'prom-client';
import { Observable } from 'rxjs';
import type { MemoryQuotaTracker } from '../../index.js';

/** `name{a="x",b="y"}` with the labels sorted by name; `name` alone without labels. */
export function seriesKey(name: string, labels: Readonly<Record<string, string | number | undefined>> = {}): string {
  const parts = Object.keys(labels)
    .filter((key) => labels[key] !== undefined)
    .sort()
    .map((key) => `${key}="${String(labels[key])}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

/** Every series the registry exports now (a scrape), as `seriesKey` → value. */
export async function scrape(registry: Registry): Promise<Map<string, number>> {
  const series = new Map<string, number>();
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const value of metric.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
      const key = seriesKey(value.metricName ?? metric.name, value.labels);
      if (series.has(key)) throw new Error(`the registry exports ${key} twice`);
      series.set(key, value.value);
    }
  }
  return series;
}

/** The series of `series` whose name is `name` or starts with `name_` / `name{`, for readable failures. */
export function family(series: ReadonlyMap<string, number>, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of series) if (key === name || key.startsWith(`${name}{`) || key.startsWith(`${name}_`)) out[key] = value;
  return out;
}

/**
 * Counts the live subscriptions to a tracker's `events$` and `pressure$` (the only ones an
 * exporter makes), by wrapping both on the instance before the exporter is attached: how a
 * spec sees that `dispose()` leaves nothing subscribed.
 */
export function countSubscriptions(tracker: MemoryQuotaTracker): { readonly live: number } {
  const counter = { live: 0 };
  const wrap = <T>(inner: Observable<T>): Observable<T> =>
    new Observable<T>((subscriber) => {
      counter.live++;
      const subscription = inner.subscribe(subscriber);
      return () => {
        counter.live--;
        subscription.unsubscribe();
      };
    });
  Object.defineProperty(tracker, 'events$', { value: wrap(tracker.events$) });
  Object.defineProperty(tracker, 'pressure$', { value: wrap(tracker.pressure$) });
  return counter;
}
