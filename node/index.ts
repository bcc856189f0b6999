/**
 * rxjs-memquota/node: the Node-only entry point. Sinks and sources that count the bytes a
 * socket, a response or a file stream holds against the memory quota.
 *
 * - {@link writeTo}: an operator writing an Observable into a Node `Writable` (`net.Socket`,
 *   `http.ServerResponse`, a `ws` stream), honouring `write()`/`'drain'`, with the bytes waiting
 *   for it and the bytes in its buffer claimed until its write callback; a reclaimed stream
 *   destroys its writable.
 * - {@link fromReadable}: a `Readable`'s chunks as an Observable that pauses reading while the
 *   tracker's pressure is high.
 *
 * The core entry point (`rxjs-memquota`) stays browser-safe; its `writeToStream` is the same
 * sink for a WHATWG `WritableStream`. `account.signal` (core) is for the user's own awaits.
 *
 * @packageDocumentation
 */
export { writeTo, type WriteToOptions } from './writeTo.js';
export { fromReadable, type FromReadableOptions } from './fromReadable.js';
