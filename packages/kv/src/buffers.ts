import { KvCorruptError } from "./errors.js";

/**
 * The bytes of `value` as a Buffer over the same memory (no copy), for clients that take Buffers
 * (node-redis, pg). A driver may keep it until its `set` settles; the caller must not change the
 * bytes before then — the rule of `socket.write` and of every network client.
 *
 * @example
 * ```ts
 * import { asBuffer } from "@kvsession/kv/driver";
 * await client.set(key, asBuffer(value));
 * ```
 */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

const utf8 = new TextEncoder();

/**
 * A value as an engine handed it back, as the bytes the contract promises. Bytes pass through
 * untouched. A string — a column retyped to text underneath the store, or text another program
 * wrote into it — becomes its UTF-8 bytes, in memory of its own. Anything else cannot be read as
 * bytes without guessing, and is refused with `KvCorruptError` naming the key.
 *
 * @example
 * ```ts
 * import { storedBytes } from "@kvsession/kv/driver";
 * const value = storedBytes(row.value, "my-engine", key);
 * ```
 */
export function storedBytes(value: unknown, driver: string, key: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return utf8.encode(value);
  throw new KvCorruptError(
    `${driver} holds a ${value === null ? "null" : typeof value} where the value of key "${key.slice(0, 200)}" should be bytes: something other than this store wrote it or changed the column's type; delete the key, or restore the column to hold bytes`,
  );
}
