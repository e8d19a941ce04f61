import { EventEmitter } from "node:events";
import { KvArgumentError, type KvStore } from "@kvsession/kv";

export interface ToKeyvOptions {
  /**
   * Reported as `opts.dialect`. Keyv only enables `keyv.iterator()` for a fixed list of dialects
   * (sqlite, postgres, mysql, mongo, redis, valkey, etcd); the default is the store's own name,
   * so over the PostgreSQL driver it is on and over the memory store it is off — `adapter.iterator()`
   * works either way.
   */
  dialect?: string;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** What `toKeyv` returns: the shape of a Keyv storage adapter (KeyvStoreAdapter), plus its event emitter. */
export interface KvKeyvAdapter extends EventEmitter {
  opts: { dialect: string; url: string };
  /** Set by Keyv to its own namespace when the adapter is handed to it. */
  namespace?: string | undefined;
  get(key: string): Promise<string | undefined>;
  getMany(keys: string[]): Promise<Array<string | undefined>>;
  set(key: string, value: unknown, ttl?: number): Promise<boolean>;
  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[]>;
  delete(key: string): Promise<boolean>;
  deleteMany(keys: string[]): Promise<boolean>;
  has(key: string): Promise<boolean>;
  hasMany(keys: string[]): Promise<boolean[]>;
  clear(): Promise<void>;
  iterator(namespace?: string): AsyncGenerator<[string, string], void>;
  disconnect(): Promise<void>;
}

function bytesOf(value: unknown): Uint8Array {
  if (typeof value !== "string")
    throw new KvArgumentError(
      "toKeyv stores the strings Keyv's serializer produces; keep Keyv's default serialize (do not set it to undefined)",
    );
  return utf8.encode(value);
}

const ttlOption = (ttl: number | undefined) => (typeof ttl === "number" && ttl > 0 ? { ttl } : undefined);

/**
 * A kvsession store as a Keyv storage adapter, so existing Keyv code adopts
 * any kvsession driver unchanged: `new Keyv({ store: toKeyv(store) })`.
 *
 * Keyv serialises each entry to a string before it reaches an adapter; that
 * string is stored as UTF-8 bytes with Keyv's TTL (ms) as the store's own
 * expiry. `clear()` deletes only the keys of the namespace Keyv assigned
 * (`namespace:` prefix), never the rest of the store. Failures are thrown as
 * typed KvErrors, which Keyv re-emits as 'error' events (and rethrows with
 * `throwOnErrors: true`). Give each Keyv instance its own adapter: Keyv writes
 * its namespace into the adapter, so one adapter shared by two Keyv instances
 * with different namespaces would clear the wrong one.
 *
 * @example
 * import Keyv from "keyv";
 * import { createMemoryStore } from "@kvsession/kv";
 * import { toKeyv } from "@kvsession/kv-keyv";
 * const keyv = new Keyv({ store: toKeyv(createMemoryStore()), namespace: "cache" });
 * await keyv.set("answer", 42, 60_000);
 * console.log(await keyv.get("answer")); // 42
 */
export function toKeyv(store: KvStore, options: ToKeyvOptions = {}): KvKeyvAdapter {
  const dialect = options.dialect ?? store.name;
  const scope = (namespace: string | undefined) => (namespace ? store.withPrefix(`${namespace}:`) : store);

  const adapter = Object.assign(new EventEmitter(), {
    opts: { dialect, url: `kvsession://${dialect}` },
    namespace: undefined as string | undefined,

    async get(key: string) {
      const v = await store.get(key);
      return v === undefined ? undefined : fromUtf8.decode(v);
    },

    async getMany(keys: string[]) {
      return (await store.getMany(keys)).map((v) => (v === undefined ? undefined : fromUtf8.decode(v)));
    },

    async set(key: string, value: unknown, ttl?: number) {
      await store.set(key, bytesOf(value), ttlOption(ttl));
      return true;
    },

    async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>) {
      await store.setMany(entries.map((e) => ({ key: e.key, value: bytesOf(e.value), ...ttlOption(e.ttl) })));
      return entries.map(() => true);
    },

    async delete(key: string) {
      return store.delete(key);
    },

    async deleteMany(keys: string[]) {
      // Keyv's own fallback answers "all of them existed"; keep its meaning.
      return (await store.deleteMany(keys)).every(Boolean);
    },

    async has(key: string) {
      return store.has(key);
    },

    async hasMany(keys: string[]) {
      return Promise.all(keys.map((k) => store.has(k)));
    },

    async clear() {
      await scope(adapter.namespace).clear();
    },

    // Keys come out whole (`namespace:key`): Keyv strips its prefix itself.
    async *iterator(namespace?: string): AsyncGenerator<[string, string], void> {
      const prefix = namespace ? `${namespace}:` : "";
      for await (const e of store.entries(prefix)) yield [e.key, fromUtf8.decode(e.value)];
    },

    async disconnect() {
      await store.close();
    },
  });
  return adapter;
}
