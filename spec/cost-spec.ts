import { expect } from 'chai';
import { memoryCost } from '../lib/cost.js';

describe('memoryCost', () => {
  it('charges 8 bytes for a slot value: null, undefined, booleans, numbers, symbols, functions', () => {
    for (const value of [null, undefined, true, false, 0, -1.5, NaN, Infinity, Symbol('s'), () => 1, Math.max]) {
      expect(memoryCost(value), String(value)).to.equal(8);
    }
  });

  it('charges a bigint 8 bytes plus 8 per 64 bits', () => {
    expect(memoryCost(0n)).to.equal(16);
    expect(memoryCost(2n ** 63n)).to.equal(16); // 64 bits
    expect(memoryCost(2n ** 64n)).to.equal(24); // 65 bits
    expect(memoryCost(-(2n ** 64n))).to.equal(24);
    expect(memoryCost(2n ** 1000n)).to.equal(8 + 8 * 16);
  });

  it('charges a string 16 bytes plus 2 per UTF-16 unit', () => {
    expect(memoryCost('')).to.equal(16);
    expect(memoryCost('abc')).to.equal(22);
    expect(memoryCost('€')).to.equal(18);
    expect(memoryCost('😀')).to.equal(20); // a surrogate pair
    expect(memoryCost('x'.repeat(1_000_000))).to.equal(2_000_016);
  });

  it('charges binary data 64 bytes plus its byte length', () => {
    const buffer = new ArrayBuffer(100);
    expect(memoryCost(buffer)).to.equal(164);
    expect(memoryCost(new Uint8Array(10))).to.equal(74);
    expect(memoryCost(new Float64Array(10))).to.equal(144);
    expect(memoryCost(new DataView(buffer, 0, 16))).to.equal(80);
    expect(memoryCost(new Uint8Array(buffer, 90))).to.equal(74, 'a view costs what it shows');
    expect(memoryCost(Buffer.alloc(1000))).to.equal(1064);
  });

  it('charges containers 24 bytes plus their entries', () => {
    expect(memoryCost([])).to.equal(24);
    expect(memoryCost([1, 2, 3])).to.equal(24 + 3 * 8);
    expect(memoryCost(['a'])).to.equal(24 + 18);
    expect(memoryCost(new Set([1, 'ab']))).to.equal(24 + 8 + 20);
    expect(memoryCost(new Map([['a', 1]]))).to.equal(24 + 18 + 8);
    expect(memoryCost({})).to.equal(24);
    // A key costs like a string (16 + 2 per unit), then its value.
    expect(memoryCost({ a: 1 })).to.equal(24 + 18 + 8);
    expect(memoryCost({ name: 'ab', tags: [true] })).to.equal(24 + (24 + 20) + (24 + 24 + 8));
  });

  it('counts own properties only', () => {
    const proto = { inherited: 'x'.repeat(100) };
    expect(memoryCost(Object.create(proto))).to.equal(24);
  });

  it('follows nesting to depth 4, then counts 8 a slot', () => {
    expect(memoryCost([[[[1]]]])).to.equal(4 * 24 + 8);
    expect(memoryCost([[[[[1]]]]])).to.equal(4 * 24 + 8);
    expect(memoryCost([[[['x'.repeat(1000)]]]])).to.equal(4 * 24 + 2016);
    expect(memoryCost([[[[['x'.repeat(1000)]]]]])).to.equal(4 * 24 + 8);
  });

  it('looks at most 1000 entries per container, counting 8 a slot for the rest', () => {
    const strings = Array.from({ length: 1500 }, () => 'ab');
    expect(memoryCost(strings)).to.equal(24 + 1000 * 20 + 500 * 8);
    expect(memoryCost(new Set(Array.from({ length: 1200 }, (_, i) => `k${i}`.padEnd(4, '-'))))).to.equal(24 + 1000 * 24 + 200 * 8);
    const map = new Map(Array.from({ length: 1100 }, (_, i) => [i, 'ab'] as const));
    expect(memoryCost(map)).to.equal(24 + 1000 * (8 + 20) + 100 * 16);
    const wide: Record<string, number> = {};
    for (let i = 0; i < 1010; i++) wide[`k${String(i).padStart(4, '0')}`] = i;
    expect(memoryCost(wide)).to.equal(24 + 1000 * (16 + 10 + 8) + 10 * 16);
  });

  it('survives cycles and counts a container it has seen as one slot', () => {
    const loop: { self?: unknown } = {};
    loop.self = loop;
    expect(memoryCost(loop)).to.equal(24 + (16 + 8) + 8);
    const shared = { a: 1 };
    expect(memoryCost([shared, shared])).to.equal(24 + 50 + 8);
    const ring: unknown[] = [];
    ring.push(ring, ring);
    expect(memoryCost(ring)).to.equal(24 + 8 + 8);
  });

  it('counts a shared container once whether the value has few containers or many', () => {
    const shared = { a: 1 }; // 50 bytes
    // Few containers (remembered in a small array) and many (more than 16: a Set takes over).
    const few = [shared, shared];
    const many = [...Array.from({ length: 20 }, () => ({})), shared, shared];
    expect(memoryCost(few)).to.equal(24 + 50 + 8);
    expect(memoryCost(many)).to.equal(24 + 20 * 24 + 50 + 8);
    // Nothing is remembered between calls: the same object costs in full again.
    expect(memoryCost(shared)).to.equal(50);
    expect(memoryCost(few)).to.equal(24 + 50 + 8);
  });

  it('never throws: what cannot be read is counted as far as it could be, plus 8', () => {
    const partly = {
      a: 1,
      get b(): number {
        throw new Error('no');
      },
    };
    expect(memoryCost(partly)).to.equal(24 + (16 + 2 + 8) + 8);
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(memoryCost(proxy)).to.equal(24 + 8);
    expect(memoryCost([proxy])).to.equal(24 + 32);
  });

  it('answers a non-negative safe integer whatever the value', () => {
    const weird = [new Date(), /re/g, new Error('e'), new WeakMap(), Promise.resolve(), new Proxy({}, {}), Object.create(null)];
    weird.forEach((value, i) => {
      const cost = memoryCost(value);
      expect(Number.isSafeInteger(cost) && cost >= 0, `value #${i}`).to.equal(true);
    });
  });
});
