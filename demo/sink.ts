/**
 * The demo's per-connection write path, in ONE function: how the producer's messages reach a
 * server-side socket, with or without the quota. Everything about `write()`, `'drain'` and
 * the queue in front of the socket lives here, so that the hand-written glue can be swapped
 * for the library's `writeTo(socket, account)` (`rxjs-memquota/node`) in this one place:
 *
 * ```ts
 * const outgoing = new Subject<string>();
 * outgoing.pipe(writeTo(socket, account, { cost })).subscribe({ error: onError });
 * return { push: (m) => outgoing.next(m), end: () => outgoing.complete() };
 * ```
 *
 * @module
 */
import type net from 'node:net';
import { Observable, Subject, concatMap } from 'rxjs';
import { MemoryReclaimedError, memquotaMap, memquotaQueue, type Account } from '../index.js';

/**
 * How a tracked connection queues its outgoing messages.
 *
 * - `'queue'` (default): `memquotaQueue`. The producer pushes into `sender`; one async loop per
 *   connection pulls from `receiver` with `for await`, writes, and waits for `'drain'` when
 *   `write()` returns false. The messages wait INSIDE the tracked queue until the socket can
 *   take them, and the loop pulls no faster than the socket drains.
 * - `'map'`: `memquotaMap(account, write, { concurrency: 1 })`, the tracked twin of the
 *   untracked `concatMap(write)` used without a quota: the map's waiting buffer is the queue.
 *
 * `memquota` alone does not fit: without a scheduler it delivers each value as it arrives, and
 * a subscriber cannot refuse a value, so the waiting would happen in an untracked buffer
 * downstream of it.
 */
export type QueueKind = 'queue' | 'map';

/** The producer's end of a connection's write path. */
export interface Sink {
  /** Queues a message for the socket. */
  push(message: string): void;
  /** No more messages. */
  end(): void;
}

/** What the write path reports back. */
export interface SinkHooks {
  /** The connection's account was reclaimed: the demo counts it and destroys the socket. */
  readonly onReclaimed: () => void;
  /**
   * Without a tracker: bytes (by `cost`) entering and leaving the untracked queue, so the demo
   * can show what it holds (`+cost` on push, `-cost` when handed to the socket).
   */
  readonly onUntracked?: (delta: number) => void;
}

/** Waits until the socket can take more (`'drain'`) or is gone (`'close'`). */
function writable(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** One write as an observable that completes when the socket can take the next one. */
function writeObservable(socket: net.Socket, message: string): Observable<never> {
  return new Observable<never>((subscriber) => {
    if (socket.destroyed || socket.write(message)) {
      subscriber.complete();
      return undefined;
    }
    const done = (): void => subscriber.complete();
    socket.once('drain', done);
    socket.once('close', done);
    return () => {
      socket.off('drain', done);
      socket.off('close', done);
    };
  });
}

/**
 * Opens the write path of one server-side connection: with `account`, a tracked queue in it
 * (`via`), reclaimed as a whole; with `null`, a plain unbounded RxJS queue
 * (`Subject` + `concatMap(write)`), the baseline.
 */
export function openSink(socket: net.Socket, account: Account | null, cost: (message: string) => number, via: QueueKind, hooks: SinkHooks): Sink {
  if (account === null) {
    const outgoing = new Subject<string>();
    const sub = outgoing
      .pipe(
        concatMap((message) => {
          hooks.onUntracked?.(-cost(message));
          return writeObservable(socket, message);
        }),
      )
      .subscribe({ error: () => socket.destroy() });
    return {
      push(message) {
        hooks.onUntracked?.(cost(message));
        outgoing.next(message);
      },
      end() {
        outgoing.complete();
        sub.unsubscribe();
      },
    };
  }

  const failed = (err: unknown): void => {
    if (err instanceof MemoryReclaimedError) return hooks.onReclaimed();
    // Not part of the demo's story: say so, drop the connection, and fail the exit code.
    console.error('demo: a connection writer failed:', err);
    socket.destroy();
    process.exitCode = 1;
  };

  if (via === 'map') {
    const outgoing = new Subject<string>();
    const sub = outgoing.pipe(memquotaMap(account, (message: string) => writeObservable(socket, message), { cost })).subscribe({ error: failed });
    return {
      push: (message) => outgoing.next(message),
      end() {
        outgoing.complete();
        sub.unsubscribe();
      },
    };
  }

  const { sender, receiver } = memquotaQueue<string>(account, { cost });
  void (async () => {
    try {
      for await (const message of receiver) {
        if (socket.destroyed) break;
        if (!socket.write(message)) await writable(socket);
      }
    } catch (err) {
      failed(err);
    }
  })();
  return {
    push(message) {
      if (!sender.closed) sender.next(message);
    },
    end: () => sender.complete(),
  };
}
