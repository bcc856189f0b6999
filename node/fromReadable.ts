/**
 * `fromReadable`: a Node `Readable` as an Observable that stops reading while memory is short.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import { Observable, type Subscriber, type Subscription } from 'rxjs';
import { MemoryQuotaTracker } from '../lib/tracker.js';
import { prematureClose } from './writeTo.js';

/** Options of {@link fromReadable}. */
export interface FromReadableOptions {
  /**
   * The tracker whose `pressure$` gates reading: the readable is paused while it is `'high'`
   * and resumed when it is `'normal'`. Give this or `pressure`, not both; with neither the
   * readable flows freely, as it does once the signal completes (the tracker shut down).
   */
  tracker?: MemoryQuotaTracker;
  /** Any pressure signal to gate reading on, instead of a tracker's `pressure$`. */
  pressure?: Observable<'normal' | 'high'>;
  /**
   * What unsubscribing does to the readable: `'destroy'` (default) destroys it (a file handle or
   * socket does not leak); `'detach'` pauses it and removes the listeners, leaving it to you.
   */
  onUnsubscribe?: 'destroy' | 'detach';
}

function isNodeReadable(value: unknown): value is Readable {
  if (value === null || typeof value !== 'object') return false;
  const r = value as Record<string, unknown>;
  return typeof r.on === 'function' && typeof r.removeListener === 'function' && typeof r.pause === 'function' && typeof r.resume === 'function' && typeof r.destroy === 'function';
}

/**
 * Emits the chunks of a Node `Readable` (a file, a socket, a request body…), pausing it while
 * the memory quota's pressure is high, so a pipeline fanning out to slow sinks never floods.
 *
 * <span class="informal">Like `fromEvent(readable, 'data')` with `'end'` and `'error'`, and a
 * hand on the tap: reading stops while `tracker.pressure$` is `'high'`.</span>
 *
 * ```text
 * readable:   --a--b--c--d-----------e--f--(end)
 * pressure$:  n--------h---------n-----------
 * result:     --a--b--c----------d--e--f--|     (paused from h to n: d is read after)
 * ```
 *
 * The readable is put in flowing mode on subscription; each chunk is emitted as it is read
 * (`Buffer`s, strings with `setEncoding`, objects in object mode). `'end'` completes the
 * result, `'error'` errors it, and a `'close'` before `'end'` (destroyed, peer gone) errors it
 * with an `Error` whose `code` is `'ERR_STREAM_PREMATURE_CLOSE'`. A readable that already ended
 * completes at once.
 *
 * With `tracker` (or `pressure`), the readable is paused while the pressure is `'high'` and
 * resumed when it is `'normal'` again (below `lowWater`): the producer waits while sinks
 * downstream (`writeTo`, `memquota`) drain. A sink that never drains would keep the pressure
 * high forever; it must be reclaimed for the pipeline to go on, which happens once `used`
 * passes `max` (see the README: with a pressure-gated producer, choose `softMax` so a stuck
 * sink still pushes `used` past `max`, e.g. `softMax: max`).
 *
 * Unsubscribing removes the listeners and destroys the readable (`onUnsubscribe: 'detach'`
 * pauses it and leaves it to you). One subscription per readable: a second subscriber would
 * share its chunks and its pauses; use `share()` to fan out.
 *
 * ## Example
 * ```ts
 * import { createReadStream } from 'node:fs';
 * import type { Socket } from 'node:net';
 * import { share } from 'rxjs';
 * import { MemoryQuotaTracker } from 'rxjs-memquota';
 * import { fromReadable, writeTo } from 'rxjs-memquota/node';
 *
 * const tracker = MemoryQuotaTracker.create({ max: 32 * 1024 * 1024, softMax: 32 * 1024 * 1024 });
 * const clients = tracker.newAccount({ name: 'clients' });
 *
 * // One file to a group of clients: reading pauses while they lag; a stuck one is dropped.
 * function broadcastFile(path: string, sockets: Socket[]): void {
 *   const file$ = fromReadable<Buffer>(createReadStream(path), { tracker }).pipe(share());
 *   for (const socket of sockets) file$.pipe(writeTo(socket, () => clients.newChild())).subscribe({ error() {} });
 * }
 * ```
 *
 * @see {@link writeTo}
 * @param readable The Node `Readable` to read.
 * @param options `tracker` or `pressure`, `onUnsubscribe`.
 * @return An Observable of the readable's chunks.
 */
export function fromReadable<T = Buffer>(readable: Readable, options: FromReadableOptions = {}): Observable<T> {
  if (!isNodeReadable(readable)) {
    throw new TypeError(`fromReadable: readable must be a Node stream.Readable (fs.ReadStream, net.Socket, a request…), got ${readable === null ? 'null' : typeof readable}`);
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`fromReadable: options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  const { tracker, pressure, onUnsubscribe = 'destroy' } = options;
  if (tracker !== undefined && pressure !== undefined) throw new TypeError('fromReadable: give tracker or pressure, not both');
  if (tracker !== undefined && !(tracker instanceof MemoryQuotaTracker)) {
    throw new TypeError(`fromReadable: tracker must be a MemoryQuotaTracker, got ${tracker === null ? 'null' : typeof tracker}`);
  }
  if (pressure !== undefined && (pressure === null || typeof (pressure as { subscribe?: unknown }).subscribe !== 'function')) {
    throw new TypeError('fromReadable: pressure must be an Observable of \'normal\' | \'high\'');
  }
  if (onUnsubscribe !== 'destroy' && onUnsubscribe !== 'detach') {
    throw new TypeError(`fromReadable: onUnsubscribe must be 'destroy' or 'detach', got ${String(onUnsubscribe)}`);
  }
  const gate = tracker?.pressure$ ?? pressure;
  return new Observable<T>((subscriber) => new ReadableTap<T>(readable, subscriber, onUnsubscribe).open(gate));
}

/** One subscription of `fromReadable`: listeners bound once, the pressure gate, one teardown. */
class ReadableTap<T> {
  /** True once ended, errored or unsubscribed. */
  private done = false;
  private gate: Subscription | null = null;
  private readonly onData = (chunk: T): void => {
    if (!this.done) this.subscriber.next(chunk);
  };
  private readonly onEnd = (): void => this.finish(undefined, true);
  private readonly onError = (err: Error): void => this.finish(err, false);
  private readonly onClose = (): void => this.finish(prematureClose('fromReadable: the readable'), false);
  private readonly onPressure = (level: 'normal' | 'high'): void => {
    if (this.done) return;
    if (level === 'high') this.readable.pause();
    else this.readable.resume();
  };

  constructor(
    private readonly readable: Readable,
    private readonly subscriber: Subscriber<T>,
    private readonly onUnsubscribe: 'destroy' | 'detach',
  ) {}

  /** Starts reading; returns the teardown. */
  open(gate: Observable<'normal' | 'high'> | undefined): () => void {
    const r = this.readable;
    if (r.readableEnded) {
      this.done = true;
      this.subscriber.complete();
      return () => {};
    }
    if (r.destroyed) {
      this.done = true;
      this.subscriber.error(new Error('fromReadable: the readable was already destroyed when subscribed'));
      return () => {};
    }
    r.on('end', this.onEnd);
    r.on('error', this.onError);
    r.on('close', this.onClose);
    // Pause before the 'data' listener: attaching it resumes a readable only if not paused.
    if (gate !== undefined) {
      r.pause();
      let high = false;
      this.gate = gate.subscribe({
        next: (level) => {
          high = level === 'high';
          if (this.gate !== null) this.onPressure(level);
        },
        error: (err) => this.finish(err, false),
        // The signal ended (the tracker shut down while high): nothing gates reading any more.
        complete: () => {
          high = false;
          if (this.gate !== null) this.onPressure('normal');
        },
      });
      if (this.done) return () => {}; // the gate errored at once
      r.on('data', this.onData);
      if (!high) r.resume();
    } else r.on('data', this.onData);
    return () => this.teardown();
  }

  private finish(err: unknown, completed: boolean): void {
    if (this.done) return;
    this.detach();
    if (completed) this.subscriber.complete();
    else {
      // An errored or closed readable is destroyed by Node already; make sure of it.
      if (!this.readable.destroyed) this.readable.destroy();
      this.subscriber.error(err);
    }
  }

  private teardown(): void {
    if (this.done) return;
    this.detach();
    if (this.onUnsubscribe === 'destroy') this.readable.destroy();
    else this.readable.pause();
  }

  private detach(): void {
    this.done = true;
    this.gate?.unsubscribe();
    this.gate = null;
    const r = this.readable;
    r.removeListener('data', this.onData);
    r.removeListener('end', this.onEnd);
    r.removeListener('error', this.onError);
    r.removeListener('close', this.onClose);
  }
}
