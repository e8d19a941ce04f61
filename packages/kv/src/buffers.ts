/**
 * The bytes of `value` as a Buffer over the same memory (no copy), for clients that take Buffers
 * (node-redis, pg). A driver may keep it until its `set` settles; the caller must not change the
 * bytes before then — the rule of `socket.write` and of every network client.
 *
 * @example
 * ```ts
 * import { asBuffer } from "@kvsession/kv";
 * await client.set(key, asBuffer(value));
 * ```
 */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
