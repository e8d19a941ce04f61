import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { asBuffer } from "./buffers.js";
import { delegateDriver } from "./delegate.js";
import { KvArgumentError, KvCorruptError } from "./errors.js";
import { createStore, storagePrefix } from "./store.js";
import type { DriverEntry, KvStore } from "./types.js";

export interface EncryptionOptions {
  /** Key id → 32-byte AES-256 key. Keep old ids here while values sealed with them may remain. */
  keys: Record<string, Uint8Array>;
  /** The id that seals new writes. */
  current: string;
  /**
   * Whether values sealed by the first format still open. That format bound a value only to its
   * key inside the wrapped store, so a value copied between two encrypted stores on different
   * prefixes of one store opened. Default true, so they stay readable; every write seals in the
   * current format. Set false once every such value has been written again (or has expired).
   */
  openFormat1?: boolean;
}

/** The first format: the key inside the wrapped store as associated data. Opened, never written. */
const FORMAT_1 = 1;
/** The current format: the whole stored key (every prefix below this store included) as associated data. */
const FORMAT = 2;
const IV = 12;
const TAG = 16;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * At-rest encryption with AES-256-GCM: every value is sealed with a fresh
 * random nonce under the current key, and the key it is stored under — with
 * every view prefix between this layer and the store at the bottom — is bound
 * in as associated data, so a value copied to another key, or to the same key
 * of another tenant's prefix, fails to open. Rotation: add a new key, make it
 * `current`; old values still open and are sealed again under the new key and
 * format when next written.
 *
 * Layout: [format=2][id length][id UTF-8][12-byte nonce][ciphertext][16-byte tag].
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
  const openFormat1 = options.openFormat1 ?? true;
  const idHeader = Buffer.concat([
    Buffer.from([FORMAT, encoder.encode(options.current).length]),
    encoder.encode(options.current),
  ]);
  const overhead = idHeader.length + IV + TAG;
  // Keys arrive here relative to `store`; what is stored is this prefix plus the key.
  const below = storagePrefix(store);
  // The format's number and a NUL lead the associated data: keys hold no NUL, so no first-format
  // value (whose associated data is a bare key) can be passed off as one of this format.
  const bound = (key: string) => Buffer.concat([Buffer.from([0, FORMAT]), encoder.encode(below + key)]);

  function seal(key: string, plain: Uint8Array): Uint8Array {
    const iv = randomBytes(IV);
    const cipher = createCipheriv("aes-256-gcm", currentKey!, iv);
    cipher.setAAD(bound(key));
    const body = cipher.update(plain);
    const final = cipher.final();
    return Buffer.concat([idHeader, iv, body, final, cipher.getAuthTag()]);
  }

  function open(key: string, sealed: Uint8Array): Uint8Array {
    const buf = asBuffer(sealed);
    const format = buf[0];
    if (buf.length < 2 + IV + TAG || (format !== FORMAT && format !== FORMAT_1))
      throw new KvCorruptError(
        `value at "${key}" is not sealed by this encryption layer (format byte ${format})`,
      );
    if (format === FORMAT_1 && !openFormat1)
      throw new KvCorruptError(
        `value at "${key}" is sealed in the first format, which openFormat1: false refuses; write it again through a store that opens it`,
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
      decipher.setAAD(format === FORMAT ? bound(key) : encoder.encode(key));
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
