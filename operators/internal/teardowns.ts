/**
 * What an operator object keeps of the teardowns a source hands to its subscriber.
 *
 * An object with `closed`, `add`, `remove` and `unsubscribe` beside `next`/`error`/`complete`
 * is a subscriber to RxJS, which then subscribes it as it is, without a wrapper (the public
 * rule of `Observable.subscribe`): a synchronous source sees `closed` turn true as soon as the
 * operator stops it. These helpers keep the handed-over teardowns in one field (usually a
 * single teardown, a list only when there are several) and run them once, as a Subscription
 * would.
 *
 * @module
 */
import type { TeardownLogic } from 'rxjs';

/** The teardowns kept: none, one, or several. */
export type KeptTeardowns = TeardownLogic | TeardownLogic[] | null;

/** Runs one teardown as a Subscription would: a function is called, anything else unsubscribed. */
export function runTeardown(teardown: TeardownLogic): void {
  if (typeof teardown === 'function') teardown();
  else if (teardown) teardown.unsubscribe();
}

/** `kept` with `teardown` added. */
export function keepTeardown(kept: KeptTeardowns, teardown: TeardownLogic): KeptTeardowns {
  if (!kept) return teardown;
  if (Array.isArray(kept)) {
    kept.push(teardown);
    return kept;
  }
  return [kept, teardown];
}

/** `kept` without `teardown`. */
export function forgetTeardown(kept: KeptTeardowns, teardown: TeardownLogic): KeptTeardowns {
  if (kept === teardown) return null;
  if (Array.isArray(kept)) {
    const i = kept.indexOf(teardown);
    if (i >= 0) kept.splice(i, 1);
  }
  return kept;
}

/** Runs every kept teardown (the caller clears its field first, so each runs once). */
export function runTeardowns(kept: KeptTeardowns): void {
  if (Array.isArray(kept)) kept.forEach(runTeardown);
  else if (kept) runTeardown(kept);
}
