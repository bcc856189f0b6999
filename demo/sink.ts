/**
 * The demo's per-connection write path, in ONE function: how the producer's messages reach a
 * server-side socket, with or without the quota.
 *
 * With a quota the library does the writing: `writeTo(socket, account)` from
 * `rxjs-memquota/node` honours `write()` and `'drain'`, keeps both the queued messages and the
 * bytes handed to the socket claimed until their write callback, and destroys the socket when
 * the account is reclaimed. The `'queue'` variant is the README's channel example: a
 * `memquotaQueue` pulled with `for await`, waiting for `'drain'` through `account.signal`.
 * Without a quota (the baseline) the path is what an application without the library writes:
 * a `Subject` and `concatMap(write)`, an unbounded queue nobody counts.
 *
 * @module
 */
import { once } from 'node:events';
import type net from 'node:net';
import { Observable, Subject, concatMap } from 'rxjs';
import { MemoryReclaimedError, memquotaQueue, type Account } from '../index.js';
import { writeTo } from '../node/index.js';

/**
 * How a tracked connection writes.
 *
 * - `'writeTo'` (default): `subject.pipe(writeTo(socket, account, { cost }))`.
 * - `'queue'`: `memquotaQueue` + `for await` + `once(socket, 'drain', { signal: account.signal })`.
 */
export type QueueKind = 'writeTo' | 'queue';

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

/** The baseline's one write: an observable that completes when the socket can take the next one. */
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
 * Opens the write path of one server-side connection: with `account`, tracked in it (`via`),
 * reclaimed as a whole; with `null`, a plain unbounded RxJS queue (`Subject` +
 * `concatMap(write)`), the baseline.
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

  if (via === 'writeTo') {
    const outgoing = new Subject<string>();
    outgoing.pipe(writeTo(socket, account, { cost })).subscribe({ error: failed });
    return { push: (message) => outgoing.next(message), end: () => outgoing.complete() };
  }

  const { sender, receiver } = memquotaQueue<string>(account, { cost });
  const signal = account.signal;
  void (async () => {
    try {
      for await (const message of receiver) {
        if (!socket.write(message)) await once(socket, 'drain', { signal });
      }
    } catch (err) {
      if (signal.aborted) socket.destroy();
      failed(err instanceof Error && err.name === 'AbortError' ? signal.reason : err);
    }
  })();
  return {
    push(message) {
      if (!sender.closed) sender.next(message);
    },
    end: () => sender.complete(),
  };
}
