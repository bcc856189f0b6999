/**
 * Account handles: `Account` and `WeakAccount` (they live in `handles.ts` with
 * `Participation`, which they construct and which constructs them).
 *
 * @module
 */
export { Account, WeakAccount, isAccount } from './handles.js';
