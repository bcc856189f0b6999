// placeholder: replaced by the owner's file at merge
/**
 * The Node-only entry point, `rxjs-memquota/node` (placeholder).
 *
 * @packageDocumentation
 */
import { Writable } from 'node:stream';

/**
 * Whether `value` is a Node `Writable` that still accepts writes.
 *
 * @param value Any value.
 * @return `true` for a `Writable` that is neither ended nor destroyed.
 */
export function isOpenWritable(value: unknown): value is Writable {
  return value instanceof Writable && !value.writableEnded && !value.destroyed;
}
