import { expect } from 'chai';
import { Counter, Registry } from 'prom-client';
import { queueScheduler } from 'rxjs';
import { ConfigError, MemoryQuotaTracker } from '../../index.js';
import { RECLAIM_DURATION_BUCKETS, collectMemquotaMetrics } from '../../prometheus/index.js';
import { FakeClock, TestParticipant, expectBooks, join } from '../helpers/books.js';
import { countSubscriptions, family, scrape, seriesKey } from './series.js';

/** A tracker on a virtual clock, reclaiming synchronously at the end of the claim that crossed max. */
function makeTracker(config = { max: 1000, lowWater: 600 }): { tracker: MemoryQuotaTracker; clock: FakeClock } {
  const clock = new FakeClock();
  return { tracker: MemoryQuotaTracker.create(config, { scheduler: queueScheduler, now: clock.now }), clock };
}

const NAMES = [
  'memquota_used_bytes',
  'memquota_max_bytes',
  'memquota_low_water_bytes',
  'memquota_soft_max_bytes',
  'memquota_pressure',
  'memquota_accounts',
  'memquota_participants',
  'memquota_reclaim_runs_total',
  'memquota_victims_total',
  'memquota_reclaimed_bytes_total',
  'memquota_accounts_collapsed_total',
  'memquota_participant_errors_total',
  'memquota_reclaim_duration_seconds',
  'memquota_account_used_bytes',
];

describe('collectMemquotaMetrics (rxjs-memquota/prometheus)', () => {
  it('exports use, limits, pressure, reclamations and participant errors, read back from a real Registry', async () => {
    const { tracker, clock } = makeTracker();
    const registry = new Registry();
    const metrics = collectMemquotaMetrics(tracker, { registry });
    expect(metrics.names).to.deep.equal(NAMES);
    expect(registry.getMetricsAsArray().map((m) => m.name)).to.deep.equal(NAMES);

    let s = await scrape(registry);
    expect(s.get('memquota_used_bytes')).to.equal(0);
    expect(s.get('memquota_max_bytes')).to.equal(1000);
    expect(s.get('memquota_low_water_bytes')).to.equal(600);
    expect(s.get('memquota_soft_max_bytes')).to.equal(900);
    expect(s.get('memquota_pressure')).to.equal(0);
    expect(family(s, 'memquota_reclaim_runs_total')).to.deep.equal({
      'memquota_reclaim_runs_total{cause="heap"}': 0,
      'memquota_reclaim_runs_total{cause="quota"}': 0,
      'memquota_reclaim_runs_total{cause="stale"}': 0,
    });
    expect(s.get('memquota_reclaim_duration_seconds_count')).to.equal(0);

    // Three accounts, oldest data first: 'a' (t=1), 'b' (t=2), 'c' (t=5).
    const ps: TestParticipant[] = [];
    const a = tracker.newAccount({ name: 'a' });
    const b = tracker.newAccount({ name: 'b' });
    const c = tracker.newAccount({ name: 'c' });
    const pa = join(a, ps, 1);
    pa.claim(300);
    join(b, ps, 2).claim(200);
    const pc = join(c, ps, 5);
    pc.claim(450); // 950 > softMax 900: pressure turns high, nothing reclaimed yet
    expectBooks(tracker, ps, { accounts: 3, participants: 3 });
    s = await scrape(registry);
    expect(s.get('memquota_used_bytes')).to.equal(950);
    expect(s.get('memquota_pressure')).to.equal(1);
    expect(s.get('memquota_accounts')).to.equal(3);
    expect(s.get('memquota_participants')).to.equal(3);
    expect(s.get('memquota_victims_total')).to.equal(0);

    // 'a' answers asynchronously, 250 ms later on the tracker clock: the run lasts 0.25 s.
    pa.onReclaim = async (self): Promise<'collapsing'> => {
      await Promise.resolve();
      clock.advance(250);
      self.collapse();
      return 'collapsing';
    };
    clock.advance(10);
    pc.claim(100); // 1050 > max: 'a' goes (750 > 600), then 'b' (550 ≤ 600)
    await tracker.settled();
    expectBooks(tracker, ps, { accounts: 1, participants: 1 });
    expect([a.closed, b.closed, c.closed]).to.deep.equal([true, true, false]);
    s = await scrape(registry);
    expect(s.get('memquota_used_bytes')).to.equal(550);
    expect(s.get('memquota_pressure')).to.equal(0); // back at or below lowWater
    expect(s.get('memquota_accounts')).to.equal(1);
    expect(s.get('memquota_participants')).to.equal(1);
    expect(s.get(seriesKey('memquota_reclaim_runs_total', { cause: 'quota' }))).to.equal(1);
    expect(s.get('memquota_victims_total')).to.equal(2);
    expect(s.get('memquota_reclaimed_bytes_total')).to.equal(500);
    expect(s.get('memquota_accounts_collapsed_total')).to.equal(2);
    expect(s.get('memquota_participant_errors_total')).to.equal(0);
    expect(s.get('memquota_reclaim_duration_seconds_count')).to.equal(1);
    expect(s.get('memquota_reclaim_duration_seconds_sum')).to.equal(0.25);
    expect(s.get(seriesKey('memquota_reclaim_duration_seconds_bucket', { le: 0.1 }))).to.equal(0);
    expect(s.get(seriesKey('memquota_reclaim_duration_seconds_bucket', { le: 0.25 }))).to.equal(1);
    expect(s.get(seriesKey('memquota_reclaim_duration_seconds_bucket', { le: '+Inf' }))).to.equal(1);

    // Participant errors: an over-release (clamped), then a getOldest that throws during a run.
    pc.participation.release(10_000);
    pc.held = 0;
    expectBooks(tracker, ps, { accounts: 1, participants: 1 });
    s = await scrape(registry);
    expect(s.get('memquota_participant_errors_total')).to.equal(1);
    expect(s.get('memquota_used_bytes')).to.equal(0);
    const faulty = join(tracker.newAccount({ name: 'faulty' }), ps, 0);
    faulty.claim(500);
    faulty.onGetOldest = () => {
      throw new Error('getOldest is broken');
    };
    join(tracker.newAccount(), ps, clock.advance(1)).claim(600); // 1100 > max
    await tracker.settled();
    expectBooks(tracker, ps);
    s = await scrape(registry);
    expect(s.get('memquota_participant_errors_total')).to.equal(2);
    expect(s.get(seriesKey('memquota_reclaim_runs_total', { cause: 'quota' }))).to.equal(2);
    expect(s.get('memquota_reclaim_duration_seconds_count')).to.equal(2);
    // The counters are the tracker's own, whatever the run did.
    const stats = tracker.stats;
    expect(s.get('memquota_victims_total')).to.equal(stats.victims);
    expect(s.get('memquota_reclaimed_bytes_total')).to.equal(stats.bytesReclaimed);
    expect(s.get('memquota_accounts_collapsed_total')).to.equal(stats.accountsCollapsed);
    expect(s.get('memquota_used_bytes')).to.equal(tracker.used);

    // The exposition text, as a scraper sees it.
    const text = await registry.metrics();
    expect(text).to.match(/^# TYPE memquota_reclaim_duration_seconds histogram$/m);
    expect(text).to.match(/^# TYPE memquota_victims_total counter$/m);
    expect(text).to.match(/^memquota_max_bytes 1000$/m);

    metrics.dispose();
    expect(registry.getMetricsAsArray()).to.deep.equal([]);
    tracker.shutdown();
  });

  it('counts runs that happened before it was attached as cause="unknown", so the causes add up to stats.reclaimRuns', async () => {
    const { tracker } = makeTracker();
    const ps: TestParticipant[] = [];
    // (A participant is a candidate once it holds data: the claim that crosses max is its second.)
    const first = join(tracker.newAccount(), ps, 1);
    first.claim(500);
    first.claim(600);
    await tracker.settled();
    expectBooks(tracker, ps, { accounts: 0, participants: 0 });
    expect(tracker.stats.reclaimRuns).to.equal(1);
    const registry = new Registry();
    using _metrics = collectMemquotaMetrics(tracker, { registry });
    const second = join(tracker.newAccount(), ps, 2);
    second.claim(500);
    second.claim(600);
    await tracker.settled();
    expectBooks(tracker, ps, { accounts: 0, participants: 0 });
    const s = await scrape(registry);
    expect(family(s, 'memquota_reclaim_runs_total')).to.deep.equal({
      'memquota_reclaim_runs_total{cause="heap"}': 0,
      'memquota_reclaim_runs_total{cause="quota"}': 1,
      'memquota_reclaim_runs_total{cause="stale"}': 0,
      'memquota_reclaim_runs_total{cause="unknown"}': 1,
    });
    expect(s.get('memquota_victims_total')).to.equal(2); // stats: since the tracker was created
    expect(s.get('memquota_reclaim_duration_seconds_count')).to.equal(1); // events: since attached
    tracker.shutdown();
  });

  it('reports a disabled tracker with +Inf limits and keeps a shut-down tracker\'s final counters until disposed', async () => {
    const registry = new Registry();
    const noop = MemoryQuotaTracker.noop();
    const noopMetrics = collectMemquotaMetrics(noop, { registry, prefix: 'noop_' });
    expect(await registry.metrics()).to.match(/^noop_memquota_max_bytes \+Inf$/m);
    noopMetrics.dispose();

    const { tracker } = makeTracker();
    const metrics = collectMemquotaMetrics(tracker, { registry });
    const ps: TestParticipant[] = [];
    join(tracker.newAccount(), ps, 1).claim(950);
    expectBooks(tracker, ps);
    expect((await scrape(registry)).get('memquota_pressure')).to.equal(1);
    join(tracker.newAccount(), ps, 2).claim(100);
    await tracker.settled();
    expectBooks(tracker, ps);
    tracker.shutdown();
    expectBooks(tracker, [], { accounts: 0, participants: 0 });
    const s = await scrape(registry);
    expect(s.get('memquota_used_bytes')).to.equal(0);
    expect(s.get('memquota_pressure')).to.equal(0);
    expect(s.get('memquota_victims_total')).to.equal(1);
    metrics.dispose();
    metrics.dispose(); // idempotent
    expect(registry.getMetricsAsArray()).to.deep.equal([]);
  });

  it('subscribes to events$ and pressure$ only while attached: dispose() leaves nothing subscribed', async () => {
    const { tracker } = makeTracker();
    const subscriptions = countSubscriptions(tracker);
    const registry = new Registry();
    const metrics = collectMemquotaMetrics(tracker, { registry, labels: { tracker: 'a' } });
    const other = collectMemquotaMetrics(makeTracker().tracker, { registry, labels: { tracker: 'b' } });
    expect(subscriptions.live, 'events$ and pressure$').to.equal(2);
    const ps: TestParticipant[] = [];
    join(tracker.newAccount(), ps, 1).claim(950);
    expectBooks(tracker, ps);
    expect((await scrape(registry)).get(seriesKey('memquota_pressure', { tracker: 'a' }))).to.equal(1);
    metrics.dispose();
    expect(subscriptions.live).to.equal(0);
    // Its series are gone, the other tracker's stay; a disposed handle tracks nothing.
    const s = await scrape(registry);
    expect(s.has(seriesKey('memquota_used_bytes', { tracker: 'a' }))).to.equal(false);
    expect(s.get(seriesKey('memquota_used_bytes', { tracker: 'b' }))).to.equal(0);
    metrics.trackAccount(tracker.newAccount({ name: 'late' }));
    expect(subscriptions.live).to.equal(0);
    other.dispose();
    expect(registry.getMetricsAsArray()).to.deep.equal([]);
    tracker.shutdown();
  });

  describe('several trackers', () => {
    it('share one registry and prefix when told apart by constant labels; disposing one removes only its series', async () => {
      const registry = new Registry();
      const ws = makeTracker().tracker;
      const cache = makeTracker({ max: 5000, lowWater: 2000 }).tracker;
      const wsMetrics = collectMemquotaMetrics(ws, { registry, labels: { tracker: 'ws' } });
      const cacheMetrics = collectMemquotaMetrics(cache, { registry, labels: { tracker: 'cache' } });
      const ps: TestParticipant[] = [];
      join(ws.newAccount(), ps, 1).claim(100);
      join(cache.newAccount(), ps, 1).claim(3000);
      expectBooks(ws);
      expectBooks(cache);
      let s = await scrape(registry);
      expect(family(s, 'memquota_used_bytes')).to.deep.equal({
        'memquota_used_bytes{tracker="ws"}': 100,
        'memquota_used_bytes{tracker="cache"}': 3000,
      });
      expect(s.get(seriesKey('memquota_max_bytes', { tracker: 'cache' }))).to.equal(5000);
      expect(s.get(seriesKey('memquota_reclaim_runs_total', { cause: 'quota', tracker: 'ws' }))).to.equal(0);

      // 5500 > 5000: the cache reclaims, ws does not. Both cache accounts go: after the older
      // one, 2500 is still over lowWater (2000), and the newer one is a candidate even inside
      // the claim that crossed (queueScheduler runs the reclamation there).
      join(cache.newAccount(), ps, 2).claim(2500);
      await cache.settled();
      expectBooks(cache);
      s = await scrape(registry);
      expect(s.get(seriesKey('memquota_reclaim_duration_seconds_count', { tracker: 'cache' }))).to.equal(1);
      expect(s.get(seriesKey('memquota_reclaim_duration_seconds_count', { tracker: 'ws' }))).to.equal(0);
      expect(s.get(seriesKey('memquota_victims_total', { tracker: 'cache' }))).to.equal(2);
      expect(s.get(seriesKey('memquota_victims_total', { tracker: 'ws' }))).to.equal(0);

      cacheMetrics[Symbol.dispose]();
      s = await scrape(registry);
      expect([...s.keys()].filter((key) => key.includes('tracker="cache"'))).to.deep.equal([]);
      expect(s.get(seriesKey('memquota_used_bytes', { tracker: 'ws' }))).to.equal(100);
      wsMetrics.dispose();
      expect(registry.getMetricsAsArray()).to.deep.equal([]);
      ws.shutdown();
      cache.shutdown();
    });

    it('gives each prefix its own metrics', async () => {
      const registry = new Registry();
      const one = makeTracker().tracker;
      const two = makeTracker().tracker;
      using _a = collectMemquotaMetrics(one, { registry, prefix: 'one_' });
      using _b = collectMemquotaMetrics(two, { registry, prefix: 'two_' });
      join(two.newAccount(), [], 1).claim(10);
      const s = await scrape(registry);
      expect([s.get('one_memquota_used_bytes'), s.get('two_memquota_used_bytes')]).to.deep.equal([0, 10]);
      one.shutdown();
      two.shutdown();
    });

    const clashes: [string, (registry: Registry, tracker: MemoryQuotaTracker) => void, RegExp][] = [
      [
        'the same labels as another tracker',
        (registry) => collectMemquotaMetrics(makeTracker().tracker, { registry, labels: { tracker: 'ws' } }),
        /another tracker is already exported to this registry under prefix '' with labels \{"tracker":"ws"\}; give each tracker distinct constant labels/,
      ],
      [
        'other label names than the trackers already there',
        (registry) => collectMemquotaMetrics(makeTracker().tracker, { registry, labels: { service: 'x' } }),
        /with label names \[tracker\]; every tracker there must use the same label names \(got \[service\]\)/,
      ],
      [
        'no labels beside a labelled tracker',
        (registry) => collectMemquotaMetrics(makeTracker().tracker, { registry }),
        /must use the same label names \(got \[\]\)/,
      ],
      [
        'the same tracker twice',
        (registry, tracker) => collectMemquotaMetrics(tracker, { registry, labels: { tracker: 'again' } }),
        /this tracker is already exported to this registry under prefix ''/,
      ],
      [
        'other histogram buckets',
        (registry) => collectMemquotaMetrics(makeTracker().tracker, { registry, labels: { tracker: 'x' }, buckets: [1, 2] }),
        /already exports memquota_reclaim_duration_seconds with other buckets/,
      ],
    ];
    for (const [what, attempt, message] of clashes) {
      it(`refuses ${what} with a ConfigError, and changes nothing`, async () => {
        const registry = new Registry();
        const tracker = makeTracker().tracker;
        using _metrics = collectMemquotaMetrics(tracker, { registry, labels: { tracker: 'ws' } });
        join(tracker.newAccount(), [], 1).claim(42);
        const before = await registry.metrics();
        expect(() => attempt(registry, tracker)).to.throw(ConfigError, message);
        expect(await registry.metrics()).to.equal(before);
        expectBooks(tracker);
        tracker.shutdown();
      });
    }

    it('refuses a registry that already has one of its names from someone else, and registers nothing', async () => {
      const registry = new Registry();
      new Counter({ name: 'memquota_victims_total', help: 'not ours', registers: [registry] });
      const tracker = makeTracker().tracker;
      expect(() => collectMemquotaMetrics(tracker, { registry })).to.throw(
        ConfigError,
        "the registry already has a metric named 'memquota_victims_total' that rxjs-memquota did not register; use another prefix",
      );
      expect(registry.getMetricsAsArray().map((m) => m.name)).to.deep.equal(['memquota_victims_total']);
      using _metrics = collectMemquotaMetrics(tracker, { registry, prefix: 'app_' });
      expect(registry.getMetricsAsArray()).to.have.length(1 + NAMES.length);
      tracker.shutdown();
    });

    it('starts afresh when the registry was cleared behind its back', async () => {
      const registry = new Registry();
      const tracker = makeTracker().tracker;
      const old = collectMemquotaMetrics(tracker, { registry });
      registry.clear();
      using _metrics = collectMemquotaMetrics(tracker, { registry });
      expect((await scrape(registry)).get('memquota_max_bytes')).to.equal(1000);
      old.dispose(); // leaves the new collector's metrics alone
      expect(registry.getMetricsAsArray()).to.have.length(NAMES.length);
      tracker.shutdown();
    });
  });

  describe('trackAccount', () => {
    it('exports named accounts\' own use, summed by name, until they are torn down, without keeping them open', async () => {
      const { tracker } = makeTracker({ max: 100_000, lowWater: 50_000 });
      const registry = new Registry();
      using metrics = collectMemquotaMetrics(tracker, { registry });
      const ps: TestParticipant[] = [];
      const server = tracker.newAccount({ name: 'server' });
      const client1 = server.newChild({ name: 'ws-client' });
      const client2 = server.newChild({ name: 'ws-client' });
      for (const account of [server, client1, client2]) metrics.trackAccount(account);
      metrics.trackAccount(client1); // twice counts once
      join(server, ps, 1).claim(10);
      join(client1, ps, 1).claim(200);
      join(client2, ps, 1).claim(300);
      expectBooks(tracker, ps);
      let s = await scrape(registry);
      expect(family(s, 'memquota_account_used_bytes')).to.deep.equal({
        'memquota_account_used_bytes{account="server"}': 10,
        'memquota_account_used_bytes{account="ws-client"}': 500,
      });
      client1.close();
      expectBooks(tracker, ps, { accounts: 2 });
      s = await scrape(registry);
      expect(s.get(seriesKey('memquota_account_used_bytes', { account: 'ws-client' }))).to.equal(300);
      expect(s.get('memquota_accounts')).to.equal(2); // the scrape opened no account and kept none
      client2.close();
      expectBooks(tracker, ps, { accounts: 1 });
      s = await scrape(registry);
      expect(family(s, 'memquota_account_used_bytes')).to.deep.equal({ 'memquota_account_used_bytes{account="server"}': 10 });
      tracker.shutdown();
      s = await scrape(registry);
      expect(family(s, 'memquota_account_used_bytes')).to.deep.equal({});
    });

    it('refuses an unnamed, closed or foreign account with a TypeError', () => {
      const { tracker } = makeTracker();
      using metrics = collectMemquotaMetrics(tracker, { registry: new Registry() });
      expect(() => metrics.trackAccount(tracker.newAccount())).to.throw(TypeError, /has no name; open it with newAccount\(\{ name \}\)/);
      const closed = tracker.newAccount({ name: 'x' });
      closed.close();
      expect(() => metrics.trackAccount(closed)).to.throw(TypeError, /is closed/);
      const other = makeTracker().tracker;
      expect(() => metrics.trackAccount(other.newAccount({ name: 'y' }))).to.throw(TypeError, /belongs to another tracker/);
      expect(() => metrics.trackAccount({} as never)).to.throw(TypeError, /needs an Account of rxjs-memquota, got object/);
      tracker.shutdown();
      other.shutdown();
    });
  });

  describe('bad input', () => {
    const cases: [string, unknown, unknown, new (...args: never[]) => Error, RegExp][] = [
      ['a non-tracker', {}, {}, TypeError, /tracker must be a MemoryQuotaTracker of rxjs-memquota, got object/],
      ['null options', 'tracker', null, ConfigError, /options must be an object, got null/],
      ['a non-registry', 'tracker', { registry: {} }, ConfigError, /registry must be a prom-client Registry/],
      ['a prefix that is not a string', 'tracker', { prefix: 7 }, ConfigError, /prefix must be a string, got number/],
      ['an invalid prefix', 'tracker', { prefix: 'my-app ' }, ConfigError, /prefix 'my-app ' is not a valid start of a Prometheus metric name/],
      ['labels that are not an object', 'tracker', { labels: 'ws' }, ConfigError, /labels must be an object of label names to string values, got string/],
      ['an invalid label name', 'tracker', { labels: { 'my-label': 'x' } }, ConfigError, /label name 'my-label' is not a valid Prometheus label name/],
      ['a reserved label name', 'tracker', { labels: { __name: 'x' } }, ConfigError, /label name '__name' is not a valid Prometheus label name/],
      ['a label the metrics use', 'tracker', { labels: { cause: 'x' } }, ConfigError, /label name 'cause' is used by the memquota metrics themselves/],
      ['a label value that is not a string', 'tracker', { labels: { tracker: 1 } }, ConfigError, /label 'tracker' must have a string value, got number/],
      ['unsorted buckets', 'tracker', { buckets: [1, 0.5] }, ConfigError, /buckets must be a non-empty list of increasing positive finite numbers/],
      ['no buckets', 'tracker', { buckets: [] }, ConfigError, /buckets must be a non-empty list/],
    ];
    for (const [what, trackerArg, options, type, message] of cases) {
      it(`refuses ${what}, registering nothing`, () => {
        const { tracker } = makeTracker();
        const registry = new Registry();
        const opts = options !== null && typeof options === 'object' && !('registry' in options) ? { registry, ...options } : options;
        expect(() => collectMemquotaMetrics((trackerArg === 'tracker' ? tracker : trackerArg) as MemoryQuotaTracker, opts as never)).to.throw(type, message);
        expect(registry.getMetricsAsArray()).to.deep.equal([]);
        tracker.shutdown();
      });
    }

    it('exports the default buckets', () => {
      expect(RECLAIM_DURATION_BUCKETS[0]).to.equal(0.0001);
      expect(RECLAIM_DURATION_BUCKETS.at(-1)).to.equal(10);
      expect(Object.isFrozen(RECLAIM_DURATION_BUCKETS)).to.equal(true);
    });
  });
});
