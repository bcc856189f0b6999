/**
 * `Participation`: a participant's handle for claiming and releasing memory (it lives in
 * `handles.ts` with the account handles).
 *
 * @module
 */
export { Participation, claimOn, releaseOn } from './handles.js';
