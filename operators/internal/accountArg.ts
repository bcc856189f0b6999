/**
 * The account argument of every queue operator: an `Account` shared by all subscriptions,
 * or a factory called once per subscription (whose account the operator closes on teardown).
 * Its validation at creation time is in `options.ts`.
 *
 * @module
 */
import type { Account } from '../../lib/handles.js';
import { isAccount } from '../../lib/seam.js';
import type { AccountArg } from './options.js';

export type { AccountArg };

/**
 * The account for one subscription, and whether the subscription owns it (must close it).
 * Throws what the factory throws, or TypeError if it returns no Account.
 */
export function accountFor(arg: AccountArg, operator: string): { account: Account; owned: boolean } {
  if (isAccount(arg)) return { account: arg, owned: false };
  const account = arg();
  if (!isAccount(account)) {
    throw new TypeError(`${operator}: the account factory must return an Account, got ${account === null ? 'null' : typeof account}`);
  }
  return { account, owned: true };
}

/**
 * Builds an operator's participant on its account (a factory's account is made here). If
 * `make` throws, an account made for it is closed again and the error rethrown.
 */
export function openOn<S>(arg: AccountArg, operator: string, make: (account: Account, owned: boolean) => S): S {
  const { account, owned } = accountFor(arg, operator);
  try {
    return make(account, owned);
  } catch (err) {
    if (owned) account.close();
    throw err;
  }
}

/** `openOn` for one subscription: a failure goes to the subscriber, and the result is `undefined`. */
export function openStream<S>(
  arg: AccountArg,
  operator: string,
  subscriber: { error(err: unknown): void },
  make: (account: Account, owned: boolean) => S,
): S | undefined {
  try {
    return openOn(arg, operator, make);
  } catch (err) {
    subscriber.error(err);
    return undefined;
  }
}
