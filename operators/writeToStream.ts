/**
 * `writeToStream`: an Observable written into a WHATWG `WritableStream`, with the bytes it
 * holds counted. Browser-safe (no Node import): browsers, Deno, Node's web streams, fetch
 * bodies.
 *
 * @module
 */
import { Observable, type OperatorFunction, type Subscriber } from 'rxjs';
import type { Account } from '../lib/handles.js';
import { openStream } from './internal/accountArg.js';
import { checkAccountArg, checkBoolean, checkChoice, checkCost, checkOptions } from './internal/options.js';
import { chunkCost, SinkShare, type SinkOutcome } from './internal/sinkShare.js';

/**
 * What `writeToStream` uses of a WHATWG `WritableStream` (structural, so that the core needs no
 * DOM types): a DOM `WritableStream`, Node's `stream/web` one, or a polyfill.
 */
export interface WritableStreamLike<W> {
  /** Whether the stream has a writer already (then `writeToStream` refuses it). */
  readonly locked: boolean;
  /** Locks the stream to a new writer; called once per subscription. */
  getWriter(): WritableStreamWriterLike<W>;
}

/** What `writeToStream` uses of a `WritableStreamDefaultWriter`. */
export interface WritableStreamWriterLike<W> {
  /** Room left in the stream's queue; 0 or less: values wait for `ready`; `null`: errored. */
  readonly desiredSize: number | null;
  /** Resolves when `desiredSize` is positive again. */
  readonly ready: Promise<undefined> | Promise<void>;
  /** Resolves when the stream closed, rejects when it errored. */
  readonly closed: Promise<undefined> | Promise<void>;
  /** Writes one chunk; settles once the sink has taken it (its claim is released then). */
  write(chunk: W): Promise<void>;
  /** Closes the stream after the queued writes (source completion, `close: true`). */
  close(): Promise<void>;
  /** Aborts the stream (reclamation, source error, unsubscription). */
  abort(reason?: unknown): Promise<void>;
  /** Releases the lock (`close: false` on completion, `onUnsubscribe: 'detach'`). */
  releaseLock(): void;
}

/** Options of {@link writeToStream}. */
export interface WriteToStreamOptions<T> {
  /**
   * Bytes a value holds while it waits for the stream or is being written. Default: the
   * `byteLength` of an `ArrayBuffer` or a view (`Uint8Array`…), the UTF-8 length of a string,
   * `memoryCost` for anything else.
   */
  cost?: (value: T) => number;
  /**
   * When the source completes: `true` (default) closes the stream (`writer.close()`) and the
   * result completes once it has closed; `false` releases the writer's lock once every write
   * has settled and completes, leaving the stream open.
   */
  close?: boolean;
  /**
   * What unsubscribing does to the stream: `'abort'` (default) aborts it (`writer.abort()`):
   * what it held is no longer counted, so it must not stay in memory; `'detach'` releases the
   * writer's lock and leaves the stream (and what it holds, no longer counted) to the caller.
   */
  onUnsubscribe?: 'abort' | 'detach';
}

function isWritableStream(value: unknown): value is WritableStreamLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { getWriter?: unknown }).getWriter === 'function';
}

function ignoreRejection(): void {}

/**
 * Writes each value of the source to a WHATWG `WritableStream`, honouring its backpressure,
 * and counts what it holds against the memory quota: a consumer that stops taking data is
 * reclaimed and its stream aborted.
 *
 * <span class="informal">`pipeTo` for Observables, where the chunks waiting for the stream and
 * the chunks it is writing are claimed in an account.</span>
 *
 * ```text
 * source:   --a--b--c--d--e--|
 * stream:     a  b  (desiredSize ≤ 0: c d e wait, claimed)  ready  c d e   close()
 * result:   ---------------------------------------------------------------|
 *
 * a stuck consumer: the tracker passes max, this account holds the oldest bytes:
 * result:   --------------#      # = MemoryReclaimedError; writer.abort(error)
 * ```
 *
 * The stream is locked (`getWriter()`) on subscription. Each value is claimed (its `cost`)
 * when it arrives and stays claimed while it waits (the writer's `desiredSize` is 0 or less:
 * values queue until `writer.ready`) **and** while it is being written, until its
 * `writer.write()` promise settles. The arrival time of the oldest value held is the data age.
 *
 * - Completion of the source closes the stream (`close: true`, default) and the result
 *   completes once `close()` has resolved.
 * - A source error, or a `cost` that throws or returns a bad count, aborts the stream with
 *   that error and errors the result with it.
 * - A write that rejects, or the stream erroring, errors the result. Everything is released.
 * - Reclamation (or the account's close, or the tracker's shutdown): everything is released,
 *   the stream is aborted with a `MemoryReclaimedError`, and the result errors with it.
 * - Unsubscribing stops writing, unsubscribes the source, releases everything and aborts the
 *   stream (`onUnsubscribe: 'detach'` releases the lock instead).
 * - A stream already locked errors the result with a TypeError on subscription.
 *
 * The result emits no value. A factory `() => Account` gives each subscription its own
 * account, closed when the subscription ends.
 *
 * ## Example
 * ```ts
 * import { interval, map, take } from 'rxjs';
 * import { MemoryQuotaTracker, writeToStream } from 'rxjs-memquota';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 16 * 1024 * 1024 });
 * const uploads = tracker.newAccount({ name: 'uploads' });
 * const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
 * fetch('/upload', { method: 'POST', body: readable, duplex: 'half' } as RequestInit);
 *
 * interval(10)
 *   .pipe(
 *     take(1000),
 *     map(() => new Uint8Array(64 * 1024)),
 *     writeToStream(writable, () => uploads.newChild()),
 *   )
 *   .subscribe({ error: (err) => console.log('upload dropped:', err.name) });
 * ```
 *
 * @see `writeTo` in `rxjs-memquota/node` (the same for a Node `Writable`)
 * @see {@link memquota}
 * @param stream The `WritableStream` to write to.
 * @param account The account to claim in, or a factory giving each subscription its own.
 * @param options `cost`, `close`, `onUnsubscribe`.
 * @return A function that returns an Observable that writes the source and completes once the
 * stream has closed, emitting nothing.
 */
export function writeToStream<T>(
  stream: WritableStreamLike<T>,
  account: Account | (() => Account),
  options: WriteToStreamOptions<T> = {},
): OperatorFunction<T, never> {
  if (!isWritableStream(stream)) {
    throw new TypeError(`writeToStream: stream must be a WHATWG WritableStream, got ${stream === null ? 'null' : typeof stream}`);
  }
  checkAccountArg(account, 'writeToStream');
  checkOptions(options, 'writeToStream');
  checkCost(options.cost, 'writeToStream');
  checkBoolean(options.close, 'close', 'writeToStream');
  const onUnsubscribe = checkChoice(options.onUnsubscribe, ['abort', 'detach'] as const, 'abort', 'onUnsubscribe', 'writeToStream');
  const cost = options.cost ?? (chunkCost as (value: T) => number);
  const close = options.close ?? true;

  return (source) =>
    new Observable<never>((subscriber) => {
      if (stream.locked) {
        subscriber.error(new TypeError('writeToStream: the stream is locked (it already has a writer, or is being piped to)'));
        return;
      }
      const sink = openStream(account, 'writeToStream', subscriber, (acc, owned) => new StreamSink<T>(acc, owned, subscriber, cost, close, stream, onUnsubscribe));
      if (sink === undefined) return;
      subscriber.add(sink);
      if (sink.open()) source.subscribe(sink);
    });
}

/** One subscription of `writeToStream`: the books (see `SinkShare`) and the writer's promises. */
class StreamSink<T> extends SinkShare<T> {
  private writer: WritableStreamWriterLike<T> | null = null;
  /** `desiredSize` fell to 0 or less: values wait until `ready`. */
  private full = false;
  private closing = false;
  /** Promise handlers, bound once per subscription. */
  private readonly onWritten = (): void => this.written();
  private readonly onFailed = (err: unknown): void => this.sinkFailed(err);
  private readonly onReady = (): void => {
    this.full = false;
    this.drained();
  };
  private readonly onClosed = (): void => this.sinkEnded();

  constructor(
    account: Account,
    ownsAccount: boolean,
    destination: Subscriber<never>,
    cost: (value: T) => number,
    close: boolean,
    private readonly stream: WritableStreamLike<T>,
    private readonly onUnsubscribe: 'abort' | 'detach',
  ) {
    super(account, ownsAccount, destination, cost, close);
  }

  /** Locks the stream and watches it for errors; false (and the result errored) if it cannot. */
  open(): boolean {
    let writer: WritableStreamWriterLike<T>;
    try {
      writer = this.stream.getWriter();
    } catch (err) {
      this.sinkFailed(err);
      return false;
    }
    this.writer = writer;
    writer.closed.then(undefined, this.onFailed);
    this.checkFull();
    return true;
  }

  protected accepting(): boolean {
    return !this.full;
  }

  protected write(value: T): void {
    this.writer!.write(value).then(this.onWritten, this.onFailed);
    this.checkFull();
  }

  protected endSink(): void {
    if (this.closing) return;
    this.closing = true;
    this.writer!.close().then(this.onClosed, this.onFailed);
  }

  protected closeSink(outcome: SinkOutcome): void {
    const writer = this.writer;
    if (writer === null) return;
    this.writer = null;
    switch (outcome.kind) {
      case 'complete':
        if (!this.closing) writer.releaseLock(); // close: false leaves the stream to the caller
        return;
      case 'unsubscribed':
        if (this.onUnsubscribe === 'abort') writer.abort().then(undefined, ignoreRejection);
        else writer.releaseLock();
        return;
      case 'error':
      case 'reclaimed':
        writer.abort(outcome.error).then(undefined, ignoreRejection);
    }
  }

  /** After a write: wait for `ready` once the stream's queue is full (or it errored: null). */
  private checkFull(): void {
    const writer = this.writer!;
    const desired = writer.desiredSize;
    if (this.full || (desired !== null && desired > 0)) return;
    this.full = true;
    writer.ready.then(this.onReady, this.onFailed);
  }
}
