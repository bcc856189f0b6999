/**
 * Option validation for every operator, in one place.
 *
 * Each check runs when the operator is created (at `pipe` time, not at subscription), throws
 * a `TypeError` or `RangeError` whose message names the operator, the option and what was
 * given, and changes nothing. `checkedCost` is the one check made per value: a `cost`
 * function's answer.
 *
 * @module
 */
import type { SchedulerLike } from 'rxjs';
import type { Account } from '../../lib/handles.js';
import { isAccount } from '../../lib/seam.js';

/** An account shared by subscriptions, or a factory giving each subscription its own. */
export type AccountArg = Account | (() => Account);

/** What a queue operator does when its account is reclaimed. */
export type OnReclaim = 'error' | 'complete' | 'drop-oldest';

/**
 * A short description of a value for an error message that keeps its type: strings are
 * quoted (`'12'` reads `"12"`, the number `12`), `null`, objects and functions named.
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return value.toString();
    case 'function':
      return 'a function';
    case 'object':
      if (value === null) return 'null';
      return Array.isArray(value) ? 'an array' : 'an object';
    default:
      return String(value); // number, boolean, undefined
  }
}

/** The type of a bad argument, for a message (`null` is not `object` there). */
function typeName(value: unknown): string {
  return value === null ? 'null' : typeof value;
}

/** Checks the account argument of a queue operator. */
export function checkAccountArg(arg: unknown, operator: string): asserts arg is AccountArg {
  if (!isAccount(arg) && typeof arg !== 'function') {
    throw new TypeError(`${operator}: account must be an Account or a function returning one, got ${typeName(arg)}`);
  }
}

/** Checks an operator's options argument (absent, or an object). */
export function checkOptions(options: unknown, operator: string): void {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`${operator}: options must be an object, got ${typeName(options)}`);
  }
}

/** Checks a `cost` option. */
export function checkCost(value: unknown, operator: string): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`${operator}: cost must be a function (value) => bytes, got ${typeof value}`);
  }
}

/** Checks a `scheduler` option (absent, or an RxJS `SchedulerLike`). */
export function checkScheduler(value: unknown, operator: string): asserts value is SchedulerLike | undefined {
  if (value !== undefined && typeof (value as Partial<SchedulerLike> | null)?.schedule !== 'function') {
    throw new TypeError(`${operator}: scheduler must be an RxJS SchedulerLike`);
  }
}

/** Checks an `onReclaim` option; the default is `'error'`. */
export function checkOnReclaim(value: unknown, operator: string): OnReclaim {
  if (value === undefined) return 'error';
  if (value === 'error' || value === 'complete' || value === 'drop-oldest') return value;
  throw new TypeError(`${operator}: onReclaim must be 'error', 'complete' or 'drop-oldest', got ${String(value)}`);
}

/** Checks a `concurrency` option: an integer ≥ 1 or `Infinity`; the default is 1. */
export function checkConcurrency(value: unknown, operator: string): number {
  if (value === undefined) return 1;
  if (typeof value !== 'number') throw new TypeError(`${operator}: concurrency must be a number, got ${typeName(value)}`);
  if (!(value === Infinity || (Number.isInteger(value) && value >= 1))) {
    throw new RangeError(`${operator}: concurrency must be an integer ≥ 1 or Infinity, got ${value}`);
  }
  return value;
}

/** Checks a `mode` option of `shedOnPressure`; the default is `'drop'`. */
export function checkShedMode(value: unknown, operator: string): 'drop' | 'error' {
  if (value === undefined) return 'drop';
  if (value === 'drop' || value === 'error') return value;
  throw new TypeError(`${operator}: mode must be 'drop' or 'error', got ${String(value)}`);
}

/**
 * A `cost` function's answer, validated: the `RangeError` `claim` would give for a bad count,
 * with the answer described so that its type shows (`"12"` is a string, `12` a number).
 */
export function checkedCost(bytes: unknown): number {
  if (typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes >= 0) return bytes;
  throw new RangeError(`cost returned ${describe(bytes)}: it must be a non-negative safe integer of bytes`);
}

/** Checks a boolean option when the operator is created. */
export function checkBoolean(value: unknown, name: string, operator: string): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`${operator}: ${name} must be a boolean, got ${value === null ? 'null' : typeof value}`);
  }
}

/** Checks a string option that must be one of `allowed`. */
export function checkChoice<C extends string>(value: unknown, allowed: readonly C[], fallback: C, name: string, operator: string): C {
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as C;
  throw new TypeError(`${operator}: ${name} must be ${allowed.map((a) => `'${a}'`).join(' or ')}, got ${String(value)}`);
}
