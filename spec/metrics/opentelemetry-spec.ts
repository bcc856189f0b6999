import { expect } from 'chai';
import { DataPointType, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { queueScheduler } from 'rxjs';
import { ConfigError, MemoryQuotaTracker } from '../../index.js';
import { RECLAIM_DURATION_BOUNDARIES, observeMemquotaMetrics } from '../../opentelemetry/index.js';
import { RECLAIM_DURATION_BUCKETS } from '../../prometheus/index.js';
import { FakeClock, TestParticipant, expectBooks, join } from '../helpers/books.js';
import { countSubscriptions, seriesKey } from './series.js';

/** A reader that collects only when the spec asks: no timer, no exporter. */
class ManualReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** A meter provider with a manual reader; `shutdown()` it at the end of the spec. */
function sdk(): { provider: MeterProvider; reader: ManualReader } {
  const reader = new ManualReader();
  return { provider: new MeterProvider({ readers: [reader] }), reader };
}

interface HistogramPoint {
  readonly count: number;
  readonly sum: number;
  readonly boundaries: readonly number[];
  readonly counts: readonly number[];
}

/** One collection: every data point as `name{attributes}` → value (a histogram's as a `HistogramPoint`). */
async function collect(reader: ManualReader): Promise<{ points: Map<string, number | HistogramPoint>; metrics: MetricData[] }> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors, 'collection errors').to.deep.equal([]);
  const points = new Map<string, number | HistogramPoint>();
  const metrics = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
  for (const metric of metrics) {
    for (const point of metric.dataPoints) {
      const key = seriesKey(metric.descriptor.name, point.attributes as Record<string, string>);
      if (points.has(key)) throw new Error(`${key} was reported twice`);
      if (metric.dataPointType === DataPointType.HISTOGRAM) {
        const h = point.value as { count: number; sum?: number; buckets: { boundaries: number[]; counts: number[] } };
        points.set(key, { count: h.count, sum: h.sum ?? 0, boundaries: h.buckets.boundaries, counts: h.buckets.counts });
      } else {
        points.set(key, point.value as number);
      }
    }
  }
  return { points, metrics };
}

function makeTracker(config = { max: 1000, lowWater: 600 }): { tracker: MemoryQuotaTracker; clock: FakeClock } {
  const clock = new FakeClock();
  return { tracker: MemoryQuotaTracker.create(config, { scheduler: queueScheduler, now: clock.now }), clock };
}

describe('observeMemquotaMetrics (rxjs-memquota/opentelemetry)', () => {
  it('observes use, limits, pressure, reclamations and participant errors, read back from a real MeterProvider', async () => {
    const { provider, reader } = sdk();
    const { tracker, clock } = makeTracker();
    const instruments = observeMemquotaMetrics(tracker, { meter: provider.getMeter('spec') });
    expect(instruments.names).to.deep.equal([
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
    ]);

    const first = await collect(reader);
    let points = first.points;
    /** What an exporter sees of an instrument: its unit and its kind of data. */
    const shape = (name: string, metrics = first.metrics): { unit: string; kind: string } => {
      const found = metrics.find((m) => m.descriptor.name === name);
      if (found === undefined) throw new Error(`no ${name}`);
      const kind = found.dataPointType === DataPointType.SUM ? (found.isMonotonic ? 'monotonic sum' : 'sum') : DataPointType[found.dataPointType];
      return { unit: found.descriptor.unit, kind };
    };
    expect(shape('memquota.used')).to.deep.equal({ unit: 'By', kind: 'GAUGE' });
    expect(shape('memquota.pressure')).to.deep.equal({ unit: '', kind: 'GAUGE' });
    expect(shape('memquota.reclaimed')).to.deep.equal({ unit: 'By', kind: 'monotonic sum' });
    expect(shape('memquota.reclaim.runs')).to.deep.equal({ unit: '{run}', kind: 'monotonic sum' });
    expect(shape('memquota.participant.errors')).to.deep.equal({ unit: '{error}', kind: 'monotonic sum' });
    expect(Object.fromEntries(points)).to.deep.equal({
      'memquota.used': 0,
      'memquota.max': 1000,
      'memquota.low_water': 600,
      'memquota.soft_max': 900,
      'memquota.pressure': 0,
      'memquota.accounts': 0,
      'memquota.participants': 0,
      'memquota.reclaim.runs{cause="quota"}': 0,
      'memquota.reclaim.runs{cause="heap"}': 0,
      'memquota.reclaim.runs{cause="stale"}': 0,
      'memquota.victims': 0,
      'memquota.reclaimed': 0,
      'memquota.accounts.collapsed': 0,
      'memquota.participant.errors': 0,
    });

    // Oldest data first: 'a' (t=1), 'b' (t=2), 'c' (t=5); 950 > softMax turns pressure high.
    const ps: TestParticipant[] = [];
    const a = tracker.newAccount({ name: 'a' });
    const pa = join(a, ps, 1);
    pa.claim(300);
    join(tracker.newAccount({ name: 'b' }), ps, 2).claim(200);
    const c = tracker.newAccount({ name: 'c' });
    const pc = join(c, ps, 5);
    pc.claim(450);
    instruments.trackAccount(c);
    expectBooks(tracker, ps, { accounts: 3, participants: 3 });
    ({ points } = await collect(reader));
    expect(points.get('memquota.used')).to.equal(950);
    expect(points.get('memquota.pressure')).to.equal(1);
    expect(points.get('memquota.accounts')).to.equal(3);
    expect(points.get('memquota.participants')).to.equal(3);
    expect(points.get(seriesKey('memquota.account.used', { account: 'c' }))).to.equal(450);

    pa.onReclaim = async (self): Promise<'collapsing'> => {
      await Promise.resolve();
      clock.advance(250);
      self.collapse();
      return 'collapsing';
    };
    pc.claim(100); // 1050 > max: 'a' goes (750 > 600), then 'b' (550 ≤ 600)
    await tracker.settled();
    expectBooks(tracker, ps, { accounts: 1, participants: 1 });
    const afterRun = await collect(reader);
    points = afterRun.points;
    expect(shape('memquota.reclaim.duration', afterRun.metrics)).to.deep.equal({ unit: 's', kind: 'HISTOGRAM' });
    expect(points.get('memquota.used')).to.equal(550);
    expect(points.get('memquota.pressure')).to.equal(0);
    expect(points.get(seriesKey('memquota.reclaim.runs', { cause: 'quota' }))).to.equal(1);
    expect(points.get('memquota.victims')).to.equal(2);
    expect(points.get('memquota.reclaimed')).to.equal(500);
    expect(points.get('memquota.accounts.collapsed')).to.equal(2);
    expect(points.get(seriesKey('memquota.account.used', { account: 'c' }))).to.equal(550);
    const durations = points.get('memquota.reclaim.duration') as HistogramPoint;
    expect(durations.count).to.equal(1);
    expect(durations.sum).to.equal(0.25);
    expect(durations.boundaries).to.deep.equal(RECLAIM_DURATION_BOUNDARIES);
    expect(durations.counts[RECLAIM_DURATION_BOUNDARIES.indexOf(0.25)]).to.equal(1); // the (0.1, 0.25] bucket

    // Participant errors: an over-release (clamped).
    pc.participation.release(10_000);
    pc.held = 0;
    expectBooks(tracker, ps, { accounts: 1, participants: 1 });
    ({ points } = await collect(reader));
    expect(points.get('memquota.participant.errors')).to.equal(1);
    expect(points.get('memquota.used')).to.equal(0);

    // Disposed: no more callbacks, no more recording; the tracker goes on alone.
    instruments.dispose();
    instruments.dispose();
    const late = join(tracker.newAccount(), ps, clock.advance(1));
    late.claim(600);
    late.claim(600);
    await tracker.settled();
    expectBooks(tracker, ps);
    expect(tracker.stats.reclaimRuns).to.equal(2);
    ({ points } = await collect(reader));
    // (The SDK may go on exporting the last cumulative values; they no longer move.)
    expect(points.get(seriesKey('memquota.reclaim.runs', { cause: 'quota' })) ?? 1).to.equal(1);
    expect((points.get('memquota.reclaim.duration') as HistogramPoint).count).to.equal(1);
    tracker.shutdown();
    await provider.shutdown();
  });

  it('reports runs from before it was attached as cause "unknown", and no limits for a disabled tracker', async () => {
    const { provider, reader } = sdk();
    const meter = provider.getMeter('spec');
    const { tracker } = makeTracker();
    const ps: TestParticipant[] = [];
    const first = join(tracker.newAccount(), ps, 1);
    first.claim(500);
    first.claim(600);
    await tracker.settled();
    expectBooks(tracker, ps, { accounts: 0 });
    using _a = observeMemquotaMetrics(tracker, { meter, attributes: { tracker: 'ws' } });
    using _b = observeMemquotaMetrics(MemoryQuotaTracker.noop(), { meter, attributes: { tracker: 'off' } });
    const { points } = await collect(reader);
    expect(points.get(seriesKey('memquota.reclaim.runs', { cause: 'unknown', tracker: 'ws' }))).to.equal(1);
    expect(points.get(seriesKey('memquota.reclaim.runs', { cause: 'quota', tracker: 'ws' }))).to.equal(0);
    expect(points.get(seriesKey('memquota.victims', { tracker: 'ws' }))).to.equal(1);
    expect(points.get(seriesKey('memquota.max', { tracker: 'ws' }))).to.equal(1000);
    expect(points.has(seriesKey('memquota.max', { tracker: 'off' }))).to.equal(false);
    expect(points.get(seriesKey('memquota.used', { tracker: 'off' }))).to.equal(0);
    tracker.shutdown();
    await provider.shutdown();
  });

  it('tells several trackers apart by attributes or prefix, and refuses duplicates with a ConfigError', async () => {
    const { provider, reader } = sdk();
    const meter = provider.getMeter('spec');
    const ws = makeTracker().tracker;
    const cache = makeTracker({ max: 5000, lowWater: 2000 }).tracker;
    using _ws = observeMemquotaMetrics(ws, { meter, attributes: { tracker: 'ws' } });
    const cacheObserver = observeMemquotaMetrics(cache, { meter, attributes: { tracker: 'cache' } });
    using _prefixed = observeMemquotaMetrics(cache, { meter, prefix: 'app.' });
    join(cache.newAccount(), [], 1).claim(3000);
    expectBooks(cache);
    const { points } = await collect(reader);
    expect(points.get(seriesKey('memquota.used', { tracker: 'ws' }))).to.equal(0);
    expect(points.get(seriesKey('memquota.used', { tracker: 'cache' }))).to.equal(3000);
    expect(points.get('app.memquota.used')).to.equal(3000);

    expect(() => observeMemquotaMetrics(makeTracker().tracker, { meter, attributes: { tracker: 'ws' } })).to.throw(
      ConfigError,
      `another tracker is already observed on this meter under prefix '' with attributes {"tracker":"ws"}; give each tracker distinct attributes`,
    );
    expect(() => observeMemquotaMetrics(ws, { meter, attributes: { tracker: 'again' } })).to.throw(
      ConfigError,
      "this tracker is already observed on this meter under prefix ''; dispose that observer first",
    );
    cacheObserver.dispose();
    using _again = observeMemquotaMetrics(cache, { meter, attributes: { tracker: 'cache' } }); // free again once disposed
    ws.shutdown();
    cache.shutdown();
    await provider.shutdown();
  });

  it('subscribes to events$ and pressure$ only while attached: dispose() leaves nothing subscribed', async () => {
    const { provider, reader } = sdk();
    const { tracker } = makeTracker();
    const subscriptions = countSubscriptions(tracker);
    const instruments = observeMemquotaMetrics(tracker, { meter: provider.getMeter('spec') });
    expect(subscriptions.live, 'events$ and pressure$').to.equal(2);
    const ps: TestParticipant[] = [];
    join(tracker.newAccount(), ps, 1).claim(950);
    expectBooks(tracker, ps);
    expect((await collect(reader)).points.get('memquota.pressure')).to.equal(1);
    instruments.dispose();
    expect(subscriptions.live).to.equal(0);
    // No callback any more: the observable instruments report nothing new.
    join(tracker.newAccount(), ps, 2).claim(10);
    expectBooks(tracker, ps);
    const { points } = await collect(reader);
    expect(points.get('memquota.used') ?? 950, 'used is no longer observed').to.equal(950);
    instruments.trackAccount(tracker.newAccount({ name: 'late' }));
    expect(subscriptions.live).to.equal(0);
    tracker.shutdown();
    await provider.shutdown();
  });

  it('uses the Prometheus entry\'s buckets, so both exports agree', () => {
    expect(RECLAIM_DURATION_BOUNDARIES).to.deep.equal(RECLAIM_DURATION_BUCKETS);
  });

  describe('bad input', () => {
    const cases: [string, unknown, unknown, new (...args: never[]) => Error, RegExp][] = [
      ['a non-tracker', 42, 'meter', TypeError, /tracker must be a MemoryQuotaTracker of rxjs-memquota, got number/],
      ['no options', 'tracker', undefined, ConfigError, /options must be an object with a meter, got undefined/],
      ['no meter', 'tracker', {}, ConfigError, /meter must be an OpenTelemetry Meter/],
      ['an invalid prefix', 'tracker', { prefix: '1abc' }, ConfigError, /prefix '1abc' is not a valid start of an OpenTelemetry instrument name/],
      ['attributes that are not an object', 'tracker', { attributes: [] }, ConfigError, /attributes must be an object of names to string values, got array/],
      ['an attribute the instruments use', 'tracker', { attributes: { account: 'x' } }, ConfigError, /attribute 'account' is used by the memquota instruments themselves/],
      ['an empty attribute name', 'tracker', { attributes: { '': 'x' } }, ConfigError, /an attribute name must not be empty/],
      ['an attribute value that is not a string', 'tracker', { attributes: { tracker: true } }, ConfigError, /attribute 'tracker' must have a string value, got boolean/],
    ];
    for (const [what, trackerArg, options, type, message] of cases) {
      it(`refuses ${what}, creating no instrument`, async () => {
        const { provider, reader } = sdk();
        const meter = provider.getMeter('spec');
        const { tracker } = makeTracker();
        const opts = options === 'meter' ? { meter } : options !== null && typeof options === 'object' && !Array.isArray(options) && Object.keys(options).length > 0 ? { meter, ...options } : options;
        expect(() => observeMemquotaMetrics((trackerArg === 'tracker' ? tracker : trackerArg) as MemoryQuotaTracker, opts as never)).to.throw(type, message);
        const { metrics } = await collect(reader);
        expect(metrics).to.deep.equal([]);
        // Nothing was registered: the same tracker is still free to observe.
        observeMemquotaMetrics(tracker, { meter }).dispose();
        tracker.shutdown();
        await provider.shutdown();
      });
    }

    it('refuses an unnamed, closed or foreign account in trackAccount with a TypeError', async () => {
      const { provider } = sdk();
      const { tracker } = makeTracker();
      using instruments = observeMemquotaMetrics(tracker, { meter: provider.getMeter('spec') });
      expect(() => instruments.trackAccount(tracker.newAccount())).to.throw(TypeError, /has no name/);
      const closed = tracker.newAccount({ name: 'x' });
      closed.close();
      expect(() => instruments.trackAccount(closed)).to.throw(TypeError, /the account is closed/);
      expect(() => instruments.trackAccount(MemoryQuotaTracker.noop().newAccount({ name: 'y' }))).to.throw(TypeError, /belongs to another tracker/);
      tracker.shutdown();
      await provider.shutdown();
    });
  });
});
