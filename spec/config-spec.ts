import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { join as joinPath } from 'node:path';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import { AUTO_HEAP_SHARE, AUTO_MAX_CEILING, AUTO_MAX_FALLBACK, AUTO_MAX_FLOOR, autoMax } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { cgroupMemoryLimit, heapSizeLimit, parseCgroupLimit, usableHeap, YOUNG_GENERATION_RESERVE } from '../lib/system.js';
import type { MemquotaConfig, TrackerOptions } from '../lib/types.js';
import { TestParticipant, expectBooks, join } from './helpers/books.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** What cgroup v1 writes for "no limit": 2^63 - 1 rounded down to a 4 KiB page. */
const V1_UNLIMITED = '9223372036854771712';

/** The ConfigError that `make` throws. */
function configError(make: () => unknown): ConfigError {
  try {
    make();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  expect.fail('expected a ConfigError');
}

describe('configuration', () => {
  describe('explicit numbers', () => {
    it('uses max, lowWater and softMax as given', () => {
      const tracker = MemoryQuotaTracker.create({ max: 1000, lowWater: 500, softMax: 700 });
      expect([tracker.max, tracker.lowWater, tracker.softMax, tracker.enabled]).to.deep.equal([1000, 500, 700, true]);
    });

    it('defaults lowWater to 75 % of max and softMax to 90 % (never below lowWater)', () => {
      const cases: [MemquotaConfig, number, number][] = [
        [{ max: 1000 }, 750, 900],
        [{ max: 1001 }, 750, 900],
        [{ max: 1000, lowWater: 'auto', softMax: 'auto' }, 750, 900],
        [{ max: 1000, lowWater: 950 }, 950, 950],
        [{ max: 1000, lowWater: 980 }, 980, 980], // exactly 98 %: allowed
        [{ max: 1000, softMax: 760 }, 750, 760],
        [{ max: 1000, softMax: 1000 }, 750, 1000],
        [{ max: 1000, lowWater: 100, softMax: 100 }, 100, 100],
      ];
      for (const [config, lowWater, softMax] of cases) {
        const tracker = MemoryQuotaTracker.create(config);
        expect([tracker.lowWater, tracker.softMax], JSON.stringify(config)).to.deep.equal([lowWater, softMax]);
      }
    });

    it('max: Infinity disables tracking', () => {
      const tracker = MemoryQuotaTracker.create({ max: Infinity });
      expect(tracker.enabled).to.equal(false);
      expect([tracker.max, tracker.lowWater, tracker.softMax]).to.deep.equal([Infinity, Infinity, Infinity]);
      const ps: TestParticipant[] = [];
      join(tracker.newAccount(), ps, 0).participation.claim(10 * GiB);
      expect(tracker.used).to.equal(0);
      expectBooks(tracker, undefined, { accounts: 1, participants: 1 });
    });
  });

  describe("max: 'auto'", () => {
    it('takes 75 % of the memory below 8 GiB and 40 % from 8 GiB, clamped to [256 MiB, 8 GiB]', () => {
      const cases: [number, number][] = [
        [100 * MiB, AUTO_MAX_FLOOR], // 75 MiB, raised to the floor
        [341 * MiB, AUTO_MAX_FLOOR], // 255.75 MiB
        [342 * MiB, Math.floor(342 * MiB * 0.75)], // 256.5 MiB
        [512 * MiB, 384 * MiB],
        [1 * GiB, 768 * MiB],
        [4 * GiB, 3 * GiB],
        [8 * GiB - 4 * MiB, 6 * GiB - 3 * MiB],
        [8 * GiB, Math.floor(8 * GiB * 0.4)],
        [16 * GiB, Math.floor(16 * GiB * 0.4)],
        [20 * GiB, 8 * GiB],
        [32 * GiB, AUTO_MAX_CEILING], // 12.8 GiB, capped
        [1024 * GiB, AUTO_MAX_CEILING],
      ];
      for (const [total, expected] of cases) {
        expect(autoMax(total), `autoMax(${total / MiB} MiB)`).to.equal(expected);
      }
      expect([AUTO_MAX_FLOOR, AUTO_MAX_CEILING]).to.deep.equal([256 * MiB, 8 * GiB]);
    });

    it('falls back to a fixed default where the memory cannot be read', () => {
      expect(AUTO_MAX_FALLBACK).to.equal(256 * MiB);
      for (const total of [undefined, 0, -1, NaN]) expect(autoMax(total), String(total)).to.equal(AUTO_MAX_FALLBACK);
    });

    it('derives max from this machine: the smaller of system memory and the cgroup limit, within a share of the heap limit', () => {
      const cgroup = cgroupMemoryLimit();
      const heapLimit = getHeapStatistics().heap_size_limit;
      expect(heapSizeLimit()).to.equal(heapLimit);
      const expected = autoMax(Math.min(totalmem(), cgroup ?? Infinity), heapLimit);
      expect(expected).to.equal(Math.min(autoMax(Math.min(totalmem(), cgroup ?? Infinity)), Math.floor(usableHeap(heapLimit) * AUTO_HEAP_SHARE)));
      for (const config of [undefined, {}, { max: 'auto' as const }, { max: 'auto' as const, lowWater: 'auto' as const }]) {
        const tracker = MemoryQuotaTracker.create(config);
        expect(tracker.max, JSON.stringify(config)).to.equal(expected);
        expect(tracker.lowWater).to.equal(Math.floor(expected * 0.75));
        expect(tracker.softMax).to.equal(Math.floor(expected * 0.9));
      }
      expect(expected).to.be.at.most(AUTO_MAX_CEILING);
    });

    it('takes the smaller of the memory rule and a share of the heap limit; a small heap gets a small max', () => {
      const cases: [number | undefined, number | undefined, number][] = [
        [24 * GiB, 4144 * MiB, Math.floor(usableHeap(4144 * MiB) * AUTO_HEAP_SHARE)], // the machine: 8 GiB by memory
        [24 * GiB, 304 * MiB, Math.floor(usableHeap(304 * MiB) * AUTO_HEAP_SHARE)], // --max-old-space-size=256
        [24 * GiB, 176 * MiB, Math.floor(usableHeap(176 * MiB) * AUTO_HEAP_SHARE)], // below the memory rule's floor: the heap wins
        [1 * GiB, 64 * GiB, 768 * MiB], // a huge heap: the memory rule wins
        [64 * GiB, 64 * GiB, AUTO_MAX_CEILING],
        [1 * GiB, undefined, 768 * MiB], // heap unknown: the memory rule alone
        [1 * GiB, NaN, 768 * MiB],
        [1 * GiB, 0, 768 * MiB],
        [undefined, 4 * GiB, Math.floor(usableHeap(4 * GiB) * AUTO_HEAP_SHARE)], // a Chromium page: jsHeapSizeLimit alone
        [undefined, 64 * GiB, AUTO_MAX_CEILING],
        [undefined, undefined, AUTO_MAX_FALLBACK], // nothing known: the fixed fallback
        [undefined, Infinity, AUTO_MAX_FALLBACK],
      ];
      // The usable heap: the limit less V8's young generation (at most half the limit).
      expect(usableHeap(304 * MiB)).to.equal(256 * MiB);
      expect(usableHeap(4144 * MiB)).to.equal(4096 * MiB);
      expect(usableHeap(64 * MiB)).to.equal(32 * MiB);
      expect(YOUNG_GENERATION_RESERVE).to.equal(48 * MiB);
      for (const [total, heap, expected] of cases) {
        expect(autoMax(total, heap), `autoMax(${total}, ${heap})`).to.equal(expected);
      }
    });
  });

  describe('cgroup limits', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(joinPath(tmpdir(), 'memquota-cgroup-'));
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    function file(name: string, text: string): string {
      const path = joinPath(dir, name);
      writeFileSync(path, text);
      return path;
    }

    it('parses a limit, and reads "max" and the v1 unlimited value as no limit', () => {
      expect(parseCgroupLimit('536870912')).to.equal(512 * MiB);
      expect(parseCgroupLimit('max')).to.equal(undefined);
      expect(parseCgroupLimit(V1_UNLIMITED)).to.equal(undefined);
      for (const garbage of ['', '0', '-1', '1.5', '12k', '0x10', 'unlimited']) {
        expect(parseCgroupLimit(garbage), JSON.stringify(garbage)).to.equal(undefined);
      }
    });

    it('reads the first file that states a limit', () => {
      const v2Max = file('v2-max', 'max\n');
      const v2Limit = file('v2-limit', '1073741824\n');
      const v1Unlimited = file('v1-unlimited', `${V1_UNLIMITED}\n`);
      const v1Limit = file('v1-limit', '536870912\n');
      const missing = joinPath(dir, 'missing');
      const cases: [string[], number | undefined][] = [
        [[v2Limit], GiB],
        [[v2Max], undefined],
        [[v1Unlimited], undefined],
        [[v1Limit], 512 * MiB],
        [[missing, v1Limit], 512 * MiB],
        [[v2Limit, v1Limit], GiB],
        [[v2Max, missing], undefined],
        [[missing], undefined],
        [[], undefined],
      ];
      for (const [files, expected] of cases) {
        expect(cgroupMemoryLimit(files), files.map((f) => f.slice(dir.length + 1)).join(', ')).to.equal(expected);
      }
    });
  });

  describe('invalid configurations', () => {
    const cases: [string, MemquotaConfig, string[]][] = [
      ["an explicit lowWater with max 'auto'", { max: 'auto', lowWater: 1000 }, ['max', 'lowWater']],
      ['an explicit lowWater with the default max', { lowWater: 1000 }, ['max', 'lowWater']],
      ["an explicit softMax with max 'auto'", { softMax: 1000 }, ['max', 'softMax']],
      ['lowWater above 98 % of max', { max: 1000, lowWater: 981 }, ['lowWater', 'max']],
      ['lowWater above max', { max: 1000, lowWater: 2000 }, ['lowWater', 'max']],
      ['max 0', { max: 0 }, ['max']],
      ['a negative max', { max: -1000 }, ['max']],
      ['a fractional max', { max: 1000.5 }, ['max']],
      ['max NaN', { max: NaN }, ['max']],
      ['max -Infinity', { max: -Infinity }, ['max']],
      ['an unsafe max', { max: 2 ** 53 }, ['max']],
      ['max as a string', { max: '1000' as unknown as number }, ['max']],
      ['max null', { max: null as unknown as number }, ['max']],
      ['lowWater 0', { max: 1000, lowWater: 0 }, ['lowWater']],
      ['a negative lowWater', { max: 1000, lowWater: -1 }, ['lowWater']],
      ['a fractional lowWater', { max: 1000, lowWater: 0.5 }, ['lowWater']],
      ['lowWater NaN', { max: 1000, lowWater: NaN }, ['lowWater']],
      ['lowWater as a string', { max: 1000, lowWater: '500' as unknown as number }, ['lowWater']],
      ['softMax 0', { max: 1000, softMax: 0 }, ['softMax']],
      ['a fractional softMax', { max: 1000, softMax: 900.5 }, ['softMax']],
      ['softMax Infinity', { max: 1000, softMax: Infinity }, ['softMax']],
      ['softMax below lowWater', { max: 1000, lowWater: 600, softMax: 500 }, ['softMax', 'lowWater', 'max']],
      ['softMax above max', { max: 1000, softMax: 1001 }, ['softMax', 'lowWater', 'max']],
    ];

    for (const [what, config, fields] of cases) {
      it(`rejects ${what}, naming ${fields.join(' and ')}`, () => {
        const err = configError(() => MemoryQuotaTracker.create(config));
        expect(err.name).to.equal('ConfigError');
        expect(err.fields).to.deep.equal(fields);
        for (const field of fields) expect(err.message).to.include(field);

        // reconfigure() refuses it alike and changes nothing.
        const tracker = MemoryQuotaTracker.create({ max: 5000, lowWater: 3000, softMax: 4000 });
        const ps: TestParticipant[] = [];
        join(tracker.newAccount(), ps, 0).claim(4500);
        const again = configError(() => tracker.reconfigure(config));
        expect(again.fields).to.deep.equal(fields);
        expect([tracker.max, tracker.lowWater, tracker.softMax]).to.deep.equal([5000, 3000, 4000]);
        expectBooks(tracker, ps);
      });
    }

    it('rejects a config that is not an object', () => {
      for (const bad of [42, 'big', true]) {
        const err = configError(() => MemoryQuotaTracker.create(bad as unknown as MemquotaConfig));
        expect(err.message).to.match(/config must be an object/);
      }
    });

    it('rejects bad options, naming the option', () => {
      const cases: [TrackerOptions, string][] = [
        [{ now: 5 as unknown as () => number }, 'now'],
        [{ scheduler: {} as unknown as TrackerOptions['scheduler'] }, 'scheduler'],
        [{ victimPolicy: 'newest' as unknown as 'oldest' }, 'victimPolicy'],
        [{ heapGuard: 'on' as unknown as boolean }, 'heapGuard'],
        [{ heapGuard: null as unknown as boolean }, 'heapGuard'],
        [{ heapGuard: { mark: 0 } }, 'heapGuard'],
        [{ heapGuard: { mark: 1 } }, 'heapGuard'],
        [{ heapGuard: { mark: 85 } }, 'heapGuard'],
        [{ heapGuard: { mark: NaN } }, 'heapGuard'],
        [{ heapGuard: { mark: '0.8' as unknown as number } }, 'heapGuard'],
        [{ heapGuard: { level: 0.8 } as unknown as { mark: number } }, 'heapGuard'],
        [{ staleAfter: 0 }, 'staleAfter'],
        [{ staleAfter: -5000 }, 'staleAfter'],
        [{ staleAfter: NaN }, 'staleAfter'],
        [{ staleAfter: '5s' as unknown as number }, 'staleAfter'],
      ];
      for (const [options, field] of cases) {
        const err = configError(() => MemoryQuotaTracker.create({ max: 1000 }, options));
        expect(err.fields).to.deep.equal([field]);
        expect(err.message).to.include(field);
      }
    });

    it('accepts the protection options: heapGuard on, off or with a mark; staleAfter in ms or Infinity', () => {
      for (const options of [{ heapGuard: true }, { heapGuard: false }, { heapGuard: {} }, { heapGuard: { mark: 0.5 } }, { staleAfter: 1 }, { staleAfter: Infinity }]) {
        const tracker = MemoryQuotaTracker.create({ max: 1000 }, options);
        expect(tracker.max, JSON.stringify(options)).to.equal(1000);
        tracker.shutdown();
      }
    });
  });
});
