/**
 * The demo's flood of JS values in ONE process, run by the crash test and the benchmark:
 *
 * ```text
 * node --max-old-space-size=N --expose-gc --import=tsx demo/flood-child.ts \
 *   --seconds S --quota <bytes>|auto|none [--cost-scale F] [--heap-guard on|off]
 * ```
 *
 * 100 channels of string messages (each message its own fresh string), one producer fanning
 * every message batch out to all channels at a nominal rate, 20 % of the consumers stalled
 * for good (they never read), the others reading as fast as they can. The backlog is JS
 * values on the V8 heap (no socket, so no kernel buffer absorbs any of it).
 *
 * - `--quota auto`: `MemoryQuotaTracker.create()` with its defaults; `<bytes>`: that `max`;
 *   `none`: no tracker, plain unbounded queues.
 * - `--cost-scale F`: the cost function reports F × the true cost (0.25 = a quarter).
 * - `--heap-guard off`: passes `{ heapGuard: false }` to the tracker options; `on` (default)
 *   passes nothing (the guard's default).
 * - Extras: `--channels N` (100), `--stalled-share F` (0.2), `--rate-mib R` (nominal MiB/s
 *   produced over all channels, 256), `--size C` (payload characters, 16384), `--quiet`, and
 *   `--min-produced-mib M`: go on past `--seconds` until M MiB were produced (at most 3 ×
 *   `--seconds` in all), so that a busy machine, producing less than nominal, still puts the
 *   process through the same volume (the crash test's rows are about volume, not time).
 *
 * Prints a progress line a second and, at the end, ONE line `RESULT {json}` with
 * `alive, seconds, fastServedPct, claims, victims, peakUsed, peakHeapUsed, producedMiB`, and
 * exits 0. Dying of the heap shows as a non-zero exit or a signal, with no RESULT line.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { ConfigError, MemoryQuotaTracker, type Account, type MemquotaConfig, type TrackerOptions } from '../index.js';
import { PlainChannel, readFast, trackedChannel, trueCost, type Channel, type ConsumerTally } from './inprocess.js';

const MiB = 1024 * 1024;

interface ChildArgs {
  readonly seconds: number;
  readonly quota: number | 'auto' | 'none';
  readonly costScale: number;
  readonly heapGuard: boolean;
  readonly channels: number;
  readonly stalledShare: number;
  readonly rateMiB: number;
  readonly size: number;
  readonly quiet: boolean;
  readonly minProducedMiB: number;
}

function fail(problem: string): never {
  console.error(
    `flood-child: ${problem}\nusage: node --max-old-space-size=N --expose-gc --import=tsx demo/flood-child.ts ` +
      '--seconds S --quota <bytes>|auto|none [--cost-scale F] [--heap-guard on|off] ' +
      '[--channels N] [--stalled-share F] [--rate-mib R] [--size C] [--min-produced-mib M] [--quiet]',
  );
  process.exit(2);
}

function positive(value: string | undefined, name: string, fallback: number, { integer = false, max = Infinity } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(n > 0 && n <= max) || (integer && !Number.isInteger(n))) fail(`--${name} must be ${integer ? 'an integer' : 'a number'} in (0, ${max}], got ${JSON.stringify(value)}`);
  return n;
}

function parse(argv: string[]): ChildArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        seconds: { type: 'string' },
        quota: { type: 'string' },
        'cost-scale': { type: 'string' },
        'heap-guard': { type: 'string' },
        channels: { type: 'string' },
        'stalled-share': { type: 'string' },
        'rate-mib': { type: 'string' },
        size: { type: 'string' },
        quiet: { type: 'boolean', default: false },
        'min-produced-mib': { type: 'string' },
      },
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (values.seconds === undefined) fail('--seconds is required');
  if (values.quota === undefined) fail('--quota is required');
  let quota: ChildArgs['quota'];
  if (values.quota === 'auto' || values.quota === 'none') quota = values.quota;
  else {
    quota = Number(values.quota);
    if (!Number.isSafeInteger(quota) || quota <= 0) fail(`--quota must be a positive integer of bytes, 'auto' or 'none', got ${JSON.stringify(values.quota)}`);
  }
  const guard = values['heap-guard'] ?? 'on';
  if (guard !== 'on' && guard !== 'off') fail(`--heap-guard must be 'on' or 'off', got ${JSON.stringify(guard)}`);
  const stalledShare = values['stalled-share'] === undefined ? 0.2 : Number(values['stalled-share']);
  if (!(stalledShare >= 0 && stalledShare <= 1)) fail('--stalled-share must lie in [0, 1]');
  return {
    seconds: positive(values.seconds, 'seconds', 10, { max: 3600 }),
    quota,
    costScale: positive(values['cost-scale'], 'cost-scale', 1, { max: 100 }),
    heapGuard: guard === 'on',
    channels: positive(values.channels, 'channels', 100, { integer: true, max: 100_000 }),
    stalledShare,
    rateMiB: positive(values['rate-mib'], 'rate-mib', 256, { max: 100_000 }),
    size: positive(values.size, 'size', 16384, { integer: true, max: 16 * MiB }),
    quiet: values.quiet === true,
    minProducedMiB: values['min-produced-mib'] === undefined ? 0 : positive(values['min-produced-mib'], 'min-produced-mib', 0, { max: 1_000_000 }),
  };
}

/**
 * Creates the tracker with options the installed core may not know yet (`heapGuard`): if
 * `create` refuses one of them by name, says so and creates the tracker without it.
 */
function createWithOptions(config: MemquotaConfig | undefined, extra: Record<string, unknown>): MemoryQuotaTracker {
  try {
    return MemoryQuotaTracker.create(config, extra as TrackerOptions);
  } catch (err) {
    const refused = err instanceof ConfigError ? err.fields.filter((f) => f in extra) : [];
    if (refused.length === 0) throw err;
    console.log(`flood-child: this tracker does not take ${refused.join(', ')} (${(err as Error).message}); running without`);
    const rest = { ...extra };
    for (const f of refused) delete rest[f];
    return MemoryQuotaTracker.create(config, rest as TrackerOptions);
  }
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const heapLimit = getHeapStatistics().heap_size_limit;

  // The quota.
  const tracker =
    args.quota === 'none'
      ? null
      : createWithOptions(args.quota === 'auto' ? undefined : { max: args.quota }, args.heapGuard ? {} : { heapGuard: false });
  const server: Account | null = tracker?.newAccount() ?? null;
  let claims = 0;
  let previousUsed = 0;
  let peakUsed = 0;
  const usageSub = tracker?.usage$.subscribe((u) => {
    if (u.used > previousUsed) claims++;
    previousUsed = u.used;
    if (u.used > peakUsed) peakUsed = u.used;
  });
  console.log(
    `flood-child: heap limit ${(heapLimit / MiB).toFixed(0)} MiB; ` +
      (tracker === null ? 'no quota (plain unbounded queues)' : `max ${(tracker.max / MiB).toFixed(1)} MiB (${args.quota === 'auto' ? 'auto' : 'explicit'})`) +
      `; cost × ${args.costScale}; heap guard ${args.heapGuard ? 'default (on)' : 'off'}; ` +
      `${args.channels} channels, ${Math.round(args.channels * args.stalledShare)} stalled; nominal ${args.rateMiB} MiB/s for ${args.seconds} s`,
  );

  // The channels and their consumers.
  const cost = (message: string): number => Math.max(1, Math.round(args.costScale * trueCost(message)));
  const stalledCount = Math.round(args.channels * args.stalledShare);
  const tally: ConsumerTally = { servedFast: 0, fastReclaimed: 0, stalledReclaimed: 0, unexpected: [] };
  // Each channel keeps its account handle: a handle garbage-collected without close() counts as
  // closed, which would end the channel.
  const channels: { channel: Channel; stalled: boolean; account: Account | null }[] = [];
  const readers: Promise<void>[] = [];
  for (let i = 0; i < args.channels; i++) {
    // Stalled ones spread evenly among the fast ones.
    const stalled = Math.floor(((i + 1) * stalledCount) / args.channels) > Math.floor((i * stalledCount) / args.channels);
    const account = server?.newChild() ?? null;
    const channel = account === null ? new PlainChannel() : trackedChannel(account, cost);
    channels.push({ channel, stalled, account });
    if (!stalled) readers.push(readFast(channel, tally));
  }

  // The sampler: peaks, and a progress line a second.
  let peakHeapUsed = 0;
  let producedFast = 0;
  let produced = 0;
  const started = performance.now();
  const elapsed = (): number => (performance.now() - started) / 1000;
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as { detail?: { kind?: number } }).detail;
      if (detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) peakHeapUsed = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const sample = (): void => {
    peakHeapUsed = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
  };
  const sampler = setInterval(sample, 50);
  let lastLine = 0;
  const progress = (): void => {
    const heap = process.memoryUsage().heapUsed;
    const victims = tally.fastReclaimed + channels.filter((c) => c.stalled && c.channel.sender.closed).length;
    if (!args.quiet) {
      console.log(
        `t ${elapsed().toFixed(1).padStart(5)} s  produced ${(produced / MiB).toFixed(0).padStart(6)} MiB  ` +
          `heapUsed ${(heap / MiB).toFixed(1).padStart(6)} MiB  ` +
          (tracker === null ? 'no quota' : `used ${(tracker.used / MiB).toFixed(1).padStart(6)} MiB of ${(tracker.max / MiB).toFixed(0)} MiB  victims ${victims}`),
      );
    }
  };

  // The producer: each turn, as many message batches as the nominal rate owes (at most 50 ms
  // worth at once), one fresh string per channel, then yield so the consumers read.
  const messageBytes = trueCost(JSON.stringify({ c: 0, seq: 0, payload: 'x'.repeat(args.size) }));
  const batchesPerSecond = (args.rateMiB * MiB) / (messageBytes * args.channels);
  const payload = 'x'.repeat(args.size);
  let owed = 0;
  let seq = 0;
  let last = performance.now();
  const deadline = started + args.seconds * 1000;
  const hardDeadline = started + 3 * args.seconds * 1000;
  const minProduced = args.minProducedMiB * MiB;
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  for (;;) {
    const at = performance.now();
    if (at >= hardDeadline || (at >= deadline && produced >= minProduced)) break;
    const now = performance.now();
    owed = Math.min(owed + ((now - last) / 1000) * batchesPerSecond, 0.05 * batchesPerSecond + 1);
    last = now;
    for (; owed >= 1; owed--) {
      seq++;
      for (let c = 0; c < channels.length; c++) {
        const entry = channels[c]!;
        if (entry.channel.sender.closed) continue;
        const message = JSON.stringify({ c, seq, payload });
        entry.channel.sender.next(message);
        produced += message.length;
        if (!entry.stalled) producedFast += message.length;
      }
    }
    if (now - lastLine >= 1000) {
      lastLine = now;
      progress();
    }
    await turn();
  }
  const seconds = elapsed();

  // The end: the fast consumers read what is left, then everything is let go.
  for (let i = 0; i < 20; i++) await turn();
  sample();
  progress();
  const victims = tracker?.stats.victims ?? 0;
  const fastServedPct = producedFast === 0 ? 0 : (100 * tally.servedFast) / producedFast;
  for (const { channel } of channels) channel.sender.complete();
  await Promise.all(readers);
  for (const { account } of channels) account?.close();
  clearInterval(sampler);
  gcObserver.disconnect();
  usageSub?.unsubscribe();
  server?.close();
  tracker?.shutdown();
  if (tally.unexpected.length > 0) {
    console.error(`flood-child: unexpected consumer errors: ${tally.unexpected.slice(0, 3).join('; ')}`);
    process.exitCode = 1;
  }
  const result = {
    alive: true,
    seconds: +seconds.toFixed(2),
    fastServedPct: +fastServedPct.toFixed(2),
    claims,
    victims,
    peakUsed,
    peakHeapUsed,
    producedMiB: +(produced / MiB).toFixed(1),
    // Beyond the contract: what the reader of a table may want.
    nominalMiBps: args.rateMiB,
    producedMiBps: +(produced / MiB / seconds).toFixed(1),
    fastReclaimed: tally.fastReclaimed,
    max: tracker?.max ?? null,
    heapLimit,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

await main();
