/* global performance, setTimeout */
/**
 * The scenario that runs inside the page: the library bundle, loaded as an ES module with no
 * Node built-in available, must reclaim a stalled stream and leave a healthy one alone.
 *
 * Part 1 is the core alone (two hand-written participants); part 2 goes through the
 * `memquota` operator with a consumer that never gets to run; part 2b pulls a `memquotaQueue`
 * with `for await` and reclaims a `memquotaMap` stuck behind its inner. They use the tracker's defaults
 * where the browser matters: the clock (`performance.now`) and the scheduler (asap, a
 * microtask), and `max` from an explicit config (part 3 checks that `'auto'` takes a share of
 * Chromium's `jsHeapSizeLimit`, or falls back to the fixed default, since a page cannot read
 * the machine's memory).
 *
 * `run()` resolves to `{ ok, checks: [{ name, ok, detail }], figures }`; it never throws on a
 * failed check, so the runner can print every check.
 */
import { AUTO_MAX_FALLBACK, MemoryQuotaTracker, autoMax, MemoryReclaimedError, memquota, memquotaMap, memquotaQueue } from 'rxjs-memquota';
import { NEVER, Subject, Subscription, asapScheduler } from 'rxjs';

const KiB = 1024;

/** A macrotask later: every microtask (asap delivery, reclamation) has run by then. */
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** A participant that holds chunks, each claimed on arrival; it frees everything when reclaimed. */
class Holder {
  constructor(account, tracker) {
    this.tracker = tracker;
    this.times = [];
    this.sizes = [];
    this.collapsed = false;
    this.participation = account.registerParticipant(this);
  }
  add(bytes) {
    this.participation.claim(bytes);
    this.times.push(this.tracker.now());
    this.sizes.push(bytes);
  }
  consumeAll() {
    for (const bytes of this.sizes) this.participation.release(bytes);
    this.times = [];
    this.sizes = [];
  }
  getOldest() {
    return this.times.length > 0 ? this.times[0] : undefined;
  }
  reclaim() {
    this.consumeAll();
    this.collapsed = true;
    return 'collapsing';
  }
}

export async function run() {
  const checks = [];
  const figures = {};
  const check = (name, ok, detail) => checks.push({ name, ok: Boolean(ok), detail: detail === undefined ? undefined : String(detail) });

  check('no Node built-in reachable from the page', typeof globalThis.process === 'undefined' && typeof globalThis.require === 'undefined');

  // --- Part 1: the core, participant level ------------------------------------------------
  {
    const tracker = MemoryQuotaTracker.create({ max: 64 * KiB, lowWater: 32 * KiB });
    const server = tracker.newAccount();
    const stalledAccount = server.newChild();
    const healthyAccount = server.newChild();
    const stalled = new Holder(stalledAccount, tracker);
    const healthy = new Holder(healthyAccount, tracker);
    const reasons = [];
    stalledAccount.collapsed$.subscribe((reason) => reasons.push(reason));

    healthy.add(KiB);
    healthy.consumeAll(); // a consumer that keeps up
    stalled.add(KiB); // the stalled consumer's oldest data…
    await tick(5); // …is strictly older than anything the healthy one holds
    healthy.add(KiB);
    for (let i = 0; i < 70; i++) stalled.add(KiB);
    figures.coreUsedAfterFlood = tracker.used;
    check('core: claims are not refused past max', tracker.used === 72 * KiB, tracker.used);
    await tracker.settled();
    figures.coreUsedAfterReclaim = tracker.used;
    check('core: the stalled participant was reclaimed', stalled.collapsed && stalled.participation.closed);
    check("core: its account collapsed with 'reclaimed'", stalledAccount.closed && reasons.join() === 'reclaimed', reasons.join());
    check('core: the healthy participant survives', !healthy.collapsed && !healthy.participation.closed && !healthyAccount.closed);
    check('core: used is what the healthy one holds', tracker.used === KiB, tracker.used);
    healthy.add(KiB);
    healthy.consumeAll();
    check('core: the healthy one goes on claiming and releasing', tracker.used === 0, tracker.used);
    check('core: the books balance', tracker.audit().problems.length === 0, tracker.audit().problems.join('; '));
    healthy.participation.close();
    healthyAccount.close();
    server.close();
    const audit = tracker.audit();
    check('core: nothing left in the books', audit.accounts === 0 && audit.participants === 0 && tracker.used === 0, JSON.stringify(audit));
    stalledAccount.close();
  }

  // --- Part 2: a stalled memquota stream ---------------------------------------------------
  {
    const tracker = MemoryQuotaTracker.create({ max: 256 * KiB, lowWater: 128 * KiB });
    const server = tracker.newAccount();
    const victims = [];
    tracker.events$.subscribe((e) => {
      if (e.type === 'victim') victims.push(e.account);
    });

    // A scheduler whose tasks never run: the stream's consumer never gets to take a value.
    const never = { now: () => performance.now(), schedule: () => new Subscription() };

    const stalledSource = new Subject();
    let stalledReceived = 0;
    let stalledError;
    stalledSource
      .pipe(memquota(() => server.newChild(), { scheduler: never }))
      .subscribe({ next: () => stalledReceived++, error: (err) => (stalledError = err) });

    const healthySource = new Subject();
    let healthyReceived = 0;
    let healthyEnd = 'open';
    healthySource
      .pipe(memquota(() => server.newChild(), { scheduler: asapScheduler }))
      .subscribe({
        next: () => healthyReceived++,
        error: (err) => (healthyEnd = `error: ${err}`),
        complete: () => (healthyEnd = 'complete'),
      });

    for (let i = 0; i < 50; i++) healthySource.next(`healthy ${i}`);
    await tick();
    check('memquota: the healthy stream delivered its first values', healthyReceived === 50, healthyReceived);
    check('memquota: nothing is held once delivered', tracker.used === 0, tracker.used);

    const chunk = 'x'.repeat(KiB);
    for (let i = 0; i < 400; i++) stalledSource.next(chunk);
    figures.operatorUsedAfterFlood = tracker.used;
    figures.operatorMax = tracker.max;
    check('memquota: the stalled stream held its 400 KiB strings past max', tracker.used > tracker.max, tracker.used);

    await tick();
    await tracker.settled();
    figures.operatorUsedAfterReclaim = tracker.used;
    check('memquota: the stalled stream errored with MemoryReclaimedError', stalledError instanceof MemoryReclaimedError, stalledError);
    check("memquota: … whose reason is 'reclaimed'", stalledError?.reason === 'reclaimed', stalledError?.reason);
    check('memquota: the stalled consumer never got a value', stalledReceived === 0, stalledReceived);
    check('memquota: the stalled stream unsubscribed from its source', !stalledSource.observed);
    check('memquota: exactly one victim', victims.length === 1, victims.join());
    check('memquota: used is back to 0', tracker.used === 0, tracker.used);

    for (let i = 0; i < 50; i++) healthySource.next(`healthy ${50 + i}`);
    await tick();
    check('memquota: the healthy stream survives and delivers', healthyReceived === 100 && healthyEnd === 'open', `${healthyReceived} ${healthyEnd}`);
    healthySource.complete();
    await tick();
    check('memquota: the healthy stream completes normally', healthyEnd === 'complete', healthyEnd);
    server.close();
    const audit = tracker.audit();
    check('memquota: nothing left in the books', audit.problems.length === 0 && audit.accounts === 0 && audit.participants === 0 && tracker.used === 0, JSON.stringify(audit));
    figures.operatorStats = tracker.stats;
  }

  // --- Part 2b: a channel pulled with for await, and memquotaMap behind a stuck inner -------
  {
    const tracker = MemoryQuotaTracker.create({ max: 64 * KiB, lowWater: 32 * KiB });
    const { sender, receiver } = memquotaQueue(() => tracker.newAccount(), { cost: () => KiB });
    for (let i = 0; i < 10; i++) sender.next(i);
    sender.complete();
    const pulled = [];
    for await (const v of receiver) {
      pulled.push(v);
      await tick();
    }
    check('memquotaQueue: for await pulls every value in order', pulled.join() === '0,1,2,3,4,5,6,7,8,9', pulled.join());
    check('memquotaQueue: the channel is freed at the end', tracker.used === 0 && tracker.audit().accounts === 0, tracker.used);

    const mapSource = new Subject();
    let mapError;
    mapSource.pipe(memquotaMap(() => tracker.newAccount(), () => NEVER, { cost: () => KiB })).subscribe({ error: (err) => (mapError = err) });
    for (let i = 0; i < 80; i++) mapSource.next(i); // one stuck in flight, the rest waiting: 80 KiB
    await tracker.settled();
    check('memquotaMap: a stream stuck behind its inner is reclaimed', mapError instanceof MemoryReclaimedError, mapError);
    check('memquotaMap: its source is unsubscribed and nothing is left', !mapSource.observed && tracker.used === 0, tracker.used);
    tracker.shutdown();
  }

  // --- Part 3: max 'auto' in a page --------------------------------------------------------
  {
    // Chromium tells its heap limit (performance.memory.jsHeapSizeLimit): 'auto' takes a share
    // of it; a browser that does not falls back to the fixed default.
    const tracker = MemoryQuotaTracker.create();
    const heapLimit = performance.memory?.jsHeapSizeLimit;
    const expected = heapLimit > 0 ? autoMax(undefined, heapLimit) : AUTO_MAX_FALLBACK;
    check(
      "'auto' max: a share of jsHeapSizeLimit where the page has it, else the fixed default",
      tracker.max === expected && (heapLimit > 0 ? tracker.max <= heapLimit / 2 : true),
      { max: tracker.max, heapLimit },
    );
    tracker.shutdown();
  }

  return { ok: checks.every((c) => c.ok), checks, figures };
}
