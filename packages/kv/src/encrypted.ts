import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { asBuffer } from "./buffers.js";
import { delegateDriver } from "./delegate.js";
import { KvArgumentError, KvCorruptError } from "./errors.js";
import { createStore } from "./store.js";
import type { DriverEntry, KvStore } from "./types.js";

export interface EncryptionOptions {
  /** Key id → 32-byte AES-256 key. Keep old ids here while values sealed with them may remain. */
  keys: Record<string, Uint8Array>;
  /** The id that seals new writes. */
  current: string;
}

const FORMAT = 1;
const IV = 12;
const TAG = 16;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * At-rest encryption with AES-256-GCM: every value is sealed with a fresh
 * random nonce under the current key, and the storage key is bound in as
 * associated data, so a value copied to another key fails to open. Rotation:
 * add a new key, make it `current`; old values still open and are re-sealed
 * under the new key when next written (or by `reseal`).
 *
 * Layout: [format=1][id length][id UTF-8][12-byte nonce][ciphertext][16-byte tag].
 *
 * @example
 * const secrets = encrypted(store, { keys: { k2026: key32 }, current: "k2026" });
 */
export function encrypted(store: KvStore, options: EncryptionOptions): KvStore {
  const keys = new Map<string, Uint8Array>();
  for (const [id, key] of Object.entries(options.keys)) {
    const idBytes = encoder.encode(id).length;
    if (idBytes === 0 || idBytes > 255)
      throw new KvArgumentError(`encryption key id "${id}" must be 1..255 bytes`);
    if (!(key instanceof Uint8Array) || key.length !== 32)
      throw new KvArgumentError(
        `encryption key "${id}" must be a 32-byte Uint8Array (AES-256), e.g. randomBytes(32)`,
      );
    keys.set(id, key);
  }
  const currentKey = keys.get(options.current);
  if (!currentKey) throw new KvArgumentError(`current key id "${options.current}" is not among the keys`);
  const idHeader = Buffer.concat([
    Buffer.from([FORMAT, encoder.encode(options.current).length]),
    encoder.encode(options.current),
  ]);
  const overhead = idHeader.length + IV + TAG;

  function seal(key: string, plain: Uint8Array): Uint8Array {
    const iv = randomBytes(IV);
    const cipher = createCipheriv("aes-256-gcm", currentKey!, iv);
    cipher.setAAD(encoder.encode(key));
    const body = cipher.update(plain);
    const final = cipher.final();
    return Buffer.concat([idHeader, iv, body, final, cipher.getAuthTag()]);
  }

  function open(key: string, sealed: Uint8Array): Uint8Array {
    const buf = asBuffer(sealed);
    if (buf.length < 2 + IV + TAG || buf[0] !== FORMAT)
      throw new KvCorruptError(
        `value at "${key}" is not sealed by this encryption layer (format byte ${buf[0]})`,
      );
    const idLen = buf[1]!;
    const id = decoder.decode(buf.subarray(2, 2 + idLen));
    const k = keys.get(id);
    if (!k)
      throw new KvCorruptError(
        `value at "${key}" is sealed with key id "${id}", which is not configured; add it to keys`,
      );
    const start = 2 + idLen;
    if (buf.length < start + IV + TAG) throw new KvCorruptError(`value at "${key}" is truncated`);
    try {
      const decipher = createDecipheriv("aes-256-gcm", k, buf.subarray(start, start + IV));
      decipher.setAAD(encoder.encode(key));
      decipher.setAuthTag(buf.subarray(buf.length - TAG));
      return Buffer.concat([decipher.update(buf.subarray(start + IV, buf.length - TAG)), decipher.final()]);
    } catch (cause) {
      throw new KvCorruptError(
        `value at "${key}" failed authentication: tampered, moved from another key, or wrong key`,
        {
          cause,
        },
      );
    }
  }

  const openEntry = (key: string, e: DriverEntry | undefined) =>
    e && { value: open(key, e.value), expiresAt: e.expiresAt };
  const base = delegateDriver(store, `${store.name} (encrypted)`);
  return createStore({
    ...base,
    capabilities: { ...store.capabilities, maxValueBytes: store.capabilities.maxValueBytes - overhead },
    get: async (key) => openEntry(key, await store.getEntry(key)),
    getMany: async (keys) =>
      (await store.getMany(keys)).map((v, i) => (v === undefined ? undefined : { value: open(keys[i]!, v) })),
    set: (key, value, expiresAt) => store.set(key, seal(key, value), { expiresAt }),
    setMany: (writes) => store.setMany(writes.map((w) => ({ ...w, value: seal(w.key, w.value) }))),
    setIfAbsent:
      base.setIfAbsent &&
      ((key, value, expiresAt) => store.setIfAbsent(key, seal(key, value), { expiresAt })),
    getVersioned:
      base.getVersioned &&
      (async (key) => {
        const v = await store.getVersioned(key);
        return {
          entry: v.value === undefined ? undefined : { value: open(key, v.value), expiresAt: v.expiresAt },
          version: v.version,
        };
      }),
    compareAndSet:
      base.compareAndSet &&
      ((key, expected, value, expiresAt) =>
        store.compareAndSet(key, expected, seal(key, value), { expiresAt })),
    async list(opts) {
      const page = await base.list(opts);
      if (!opts.values) return page;
      return {
        items: page.items.map((it) => ({ ...it, value: it.value && open(it.key, it.value) })),
        cursor: page.cursor,
      };
    },
  });
}
