/**
 * `writeTo`: an Observable written into a Node `Writable`, with the bytes it holds counted.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { Writable } from 'node:stream';
import { Observable, type OperatorFunction, type Subscriber } from 'rxjs';
import type { Account } from '../lib/handles.js';
import { memoryCost } from '../lib/cost.js';
import { openStream } from '../operators/internal/accountArg.js';
import { checkAccountArg, checkBoolean, checkChoice, checkCost, checkOptions, type AccountArg } from '../operators/internal/options.js';
import { SinkShare, type SinkOutcome } from '../operators/internal/sinkShare.js';

/** Options of {@link writeTo}. */
export interface WriteToOptions<T> {
  /**
   * Bytes a value holds while it waits for the writable or sits in its buffer. Default: the
   * `byteLength` of a `Buffer` / `Uint8Array` / `ArrayBuffer`, the encoded length of a string
   * (in `encoding`, default UTF-8), {@link memoryCost} for anything else (object mode).
   */
  cost?: (value: T) => number;
  /**
   * When the source completes: `true` (default) ends the writable (`end()`) and the result
   * completes on its `'finish'`; `false` leaves it open and completes once every value has
   * been called back (`write`'s callback), for writing several streams in turn.
   */
  end?: boolean;
  /** Encoding of string values, passed to `write(chunk, encoding, cb)`. Default UTF-8. */
  encoding?: BufferEncoding;
  /**
   * What unsubscribing does to the writable: `'destroy'` (default) destroys it (plain
   * `destroy()`, no error event): the bytes it held are no longer counted, so they must not
   * stay in memory; `'detach'` only stops writing and removes the listeners, leaving the
   * writable and what it has buffered to the caller (no longer counted).
   */
  onUnsubscribe?: 'destroy' | 'detach';
}

/**
 * The error for a writable (or readable) that closed before it finished: the peer went away, or
 * someone destroyed it. Node's own: a plain `Error` with `code` `'ERR_STREAM_PREMATURE_CLOSE'`,
 * as `stream.finished` reports it.
 *
 * @internal
 */
export function prematureClose(what: string): Error {
  return Object.assign(new Error(`${what} closed before it finished (the peer went away, or it was destroyed)`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/** Whether `value` has the methods `writeTo` uses of a Node `Writable`. */
function isNodeWritable(value: unknown): value is Writable {
  if (value === null || typeof value !== 'object') return false;
  const w = value as Record<string, unknown>;
  return (
    typeof w.write === 'function' &&
    typeof w.end === 'function' &&
    typeof w.destroy === 'function' &&
    typeof w.on === 'function' &&
    typeof w.removeListener === 'function'
  );
}

/** Listens for the error a destroyed writable may still emit, so it never goes uncaught. */
function ignoreLateError(): void {}

/**
 * Writes each value of the source to a Node `Writable` (a `net.Socket`, an
 * `http.ServerResponse`, a `ws` stream…), honouring backpressure, and counts what it holds
 * against the memory quota: a client that stops reading is reclaimed and its writable
 * destroyed.
 *
 * <span class="informal">`source.pipe(writable)` for Observables, where the bytes waiting for
 * the writable and the bytes sitting in its buffer are claimed in an account.</span>
 *
 * ```text
 * source:   --a--b--c--d--e--|
 * writable:   a  b  (full: c d e wait, claimed)   'drain'  c d e   end()   'finish'
 * result:   ---------------------------------------------------------------|
 *
 * a stuck client: the tracker passes max, this account holds the oldest bytes:
 * result:   --------------#      # = MemoryReclaimedError; writable.destroy(error)
 * ```
 *
 * Each value is claimed (its `cost`) when it arrives and stays claimed while it waits for the
 * writable (`write()` returned false: values queue until `'drain'`) **and** after it has been
 * handed over, until `write`'s callback fires (the writable has flushed it: for a socket, into
 * the kernel). The arrival time of the oldest value held is the data age, so a client whose
 * socket buffer is full is the oldest, and the tracker reclaims it first.
 *
 * - Completion of the source ends the writable (`end: true`, default) and the result
 *   completes on its `'finish'` (everything flushed).
 * - A source error, a `cost` that throws or returns a bad count, or a `write()` that throws
 *   destroys the writable with that error and errors the result with it.
 * - The writable's `'error'` (or a write callback's error) errors the result; the writable
 *   closing before it finished (the client went away) errors it with an `Error` whose `code`
 *   is `'ERR_STREAM_PREMATURE_CLOSE'`, as Node's `stream.finished` does. Everything is released.
 * - Reclamation (or the account's close, or the tracker's shutdown): everything is released,
 *   the writable is destroyed with a `MemoryReclaimedError` (its `'error'` listeners see it;
 *   `writeTo` keeps a listener so it is never uncaught), and the result errors with it.
 * - Unsubscribing stops writing, unsubscribes the source, releases everything and destroys the
 *   writable (`onUnsubscribe: 'detach'` leaves it to you).
 *
 * The result emits no value. A factory `() => Account` gives each subscription its own
 * account, closed when the subscription ends.
 *
 * ## Example
 * ```ts
 * import net from 'node:net';
 * import { interval, map } from 'rxjs';
 * import { MemoryQuotaTracker } from 'rxjs-memquota';
 * import { writeTo } from 'rxjs-memquota/node';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 64 * 1024 * 1024 });
 * const clients = tracker.newAccount({ name: 'clients' });
 * const ticks = interval(10).pipe(map((i) => Buffer.alloc(64 * 1024, i)));
 *
 * net.createServer((socket) => {
 *   socket.on('error', () => {}); // a reclaimed client's socket is destroyed with the error
 *   ticks.pipe(writeTo(socket, () => clients.newChild())).subscribe({
 *     error: (err) => console.log('client dropped:', err.name),
 *   });
 * }).listen(7000);
 * ```
 *
 * @see {@link fromReadable}
 * @see `writeToStream` (the same for a WHATWG `WritableStream`, in the core entry point)
 * @param writable The Node `Writable` to write to.
 * @param account The account to claim in, or a factory giving each subscription its own.
 * @param options `cost`, `end`, `encoding`, `onUnsubscribe`.
 * @return A function that returns an Observable that writes the source and completes once the
 * writable has finished, emitting nothing.
 */
export function writeTo<T>(writable: Writable, account: Account | (() => Account), options: WriteToOptions<T> = {}): OperatorFunction<T, never> {
  if (!isNodeWritable(writable)) {
    throw new TypeError(
      `writeTo: writable must be a Node stream.Writable (net.Socket, http.ServerResponse, a ws stream…), got ${writable === null ? 'null' : typeof writable}`,
    );
  }
  checkAccountArg(account, 'writeTo');
  checkOptions(options, 'writeTo');
  checkCost(options.cost, 'writeTo');
  checkBoolean(options.end, 'end', 'writeTo');
  const encoding = options.encoding;
  if (encoding !== undefined && (typeof encoding !== 'string' || !Buffer.isEncoding(encoding))) {
    throw new TypeError(`writeTo: encoding must be a Buffer encoding such as 'utf8', got ${String(encoding)}`);
  }
  const onUnsubscribe = checkChoice(options.onUnsubscribe, ['destroy', 'detach'] as const, 'destroy', 'onUnsubscribe', 'writeTo');
  const cost = options.cost ?? (nodeChunkCost(encoding ?? 'utf8') as (value: T) => number);
  const end = options.end ?? true;

  return (source) =>
    new Observable<never>((subscriber) => {
      const sink = openStream(account as AccountArg, 'writeTo', subscriber, (acc, owned) => new WritableSink<T>(acc, owned, subscriber, cost, end, writable, encoding, onUnsubscribe));
      if (sink === undefined) return;
      subscriber.add(sink);
      if (!sink.open()) return;
      source.subscribe(sink);
    });
}

/** The default cost for a Node writable: what the chunk adds to its buffer. */
function nodeChunkCost(encoding: BufferEncoding): (value: unknown) => number {
  return (value) => {
    if (typeof value === 'string') return Buffer.byteLength(value, encoding);
    if (ArrayBuffer.isView(value)) return value.byteLength;
    if (value instanceof ArrayBuffer) return value.byteLength;
    return memoryCost(value);
  };
}

/** One subscription of `writeTo`: the books (see `SinkShare`) and the writable's events. */
class WritableSink<T> extends SinkShare<T> {
  /** `write()` returned false: values wait until `'drain'`. */
  private full: boolean;
  /** `end()` was called: `'finish'` completes the result. */
  private ending = false;
  /** `open()` attached the listeners: only then is the writable this subscription's to close. */
  private listening = false;
  /** Listeners, bound once per subscription. */
  private readonly onWritten = (err?: Error | null): void => {
    if (err) this.sinkFailed(err);
    else this.written();
  };
  private readonly onDrain = (): void => {
    this.full = false;
    this.drained();
  };
  private readonly onFinish = (): void => this.sinkEnded();
  private readonly onError = (err: Error): void => this.sinkFailed(err);
  private readonly onClose = (): void => this.sinkFailed(prematureClose('writeTo: the writable'));

  constructor(
    account: Account,
    ownsAccount: boolean,
    destination: Subscriber<never>,
    cost: (value: T) => number,
    end: boolean,
    private readonly writable: Writable,
    private readonly encoding: BufferEncoding | undefined,
    private readonly onUnsubscribe: 'destroy' | 'detach',
  ) {
    super(account, ownsAccount, destination, cost, end);
    this.full = writable.writableNeedDrain === true;
  }

  /** Starts listening; false (and the result errored) if the writable is already unusable. */
  open(): boolean {
    const w = this.writable;
    if (w.destroyed || w.writableEnded) {
      this.sinkFailed(new Error(`writeTo: the writable was already ${w.destroyed ? 'destroyed' : 'ended'} when subscribed`));
      return false;
    }
    w.on('drain', this.onDrain);
    w.on('finish', this.onFinish);
    w.on('error', this.onError);
    w.on('close', this.onClose);
    this.listening = true;
    return true;
  }

  protected accepting(): boolean {
    return !this.full;
  }

  protected write(value: T): void {
    const ok = this.encoding === undefined ? this.writable.write(value, this.onWritten) : this.writable.write(value, this.encoding, this.onWritten);
    if (!ok) this.full = true;
  }

  protected endSink(): void {
    if (this.ending) return;
    this.ending = true;
    this.writable.end();
  }

  protected closeSink(outcome: SinkOutcome): void {
    // Refused at open (already destroyed or ended): the writable is not ours to touch; an
    // ended one may still be flushing its last bytes.
    if (!this.listening) return;
    this.listening = false;
    const w = this.writable;
    w.removeListener('drain', this.onDrain);
    w.removeListener('finish', this.onFinish);
    w.removeListener('error', this.onError);
    w.removeListener('close', this.onClose);
    switch (outcome.kind) {
      case 'complete':
        return;
      case 'unsubscribed':
        if (this.onUnsubscribe === 'destroy') w.destroy();
        return;
      case 'error':
      case 'reclaimed':
        if (w.destroyed) return;
        w.on('error', ignoreLateError);
        w.destroy(outcome.error instanceof Error ? outcome.error : undefined);
    }
  }
}
