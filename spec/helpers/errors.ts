import { expect } from 'chai';
import { MemquotaError } from '../../index.js';

/** Asserts that `call` throws a MemquotaError of `kind`. */
export function expectKind(call: () => unknown, kind: string, what?: string): void {
  expect(call, what).to.throw(MemquotaError).with.property('kind', kind);
}
