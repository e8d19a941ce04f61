import { EventEmitter } from "node:events";
import { KvArgumentError, type KvStore } from "@kvsession/kv";

export interface ToKeyvOptions {
  /**
   * Reported as `opts.dialect`. Keyv 5 only enables `keyv.iterator()` for a fixed list of dialects
   * (sqlite, postgres, mysql, mongo, redis, valkey, etcd); the default is the store's own name,
   * so over the PostgreSQL driver it is on and over the memory store it is off (see the README
   * for turning it on). Keyv 6 has no such list.
   */
  dialect?: string;
  /**
   * The namespace used under Keyv 6 when the Keyv instance has none of its own. Default `"keyv"`,
   * the namespace Keyv 5 gives every instance by default, so an app that moves from Keyv 5 to 6
   * keeps addressing the same keys and `clear()` stays inside them. `""` for none: keys are
   * stored bare and `clear()` empties the whole store. Keyv 5 always sets its own namespace.
   */
  namespace?: string;
}

/** Keyv 5's default namespace. */
const KEYV5_DEFAULT_NAMESPACE = "keyv";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** What Keyv 6 reads in `capabilities` (its `KeyvStorageCapability`). */
export interface KeyvStorageCapabilityLike {
  compatible: boolean;
  store: "keyvStorage";
  methods: Record<string, { exists: boolean; methodType: "async" }>;
  /** The adapter takes Keyv 6's contract: absolute `expires` deadlines, keys without the namespace. */
  expires: true;
}

/**
 * What `toKeyv` returns: the shape of a Keyv storage adapter, for Keyv 5 (`KeyvStoreAdapter`)
 * and Keyv 6 (`KeyvStorageAdapter`), plus its event emitter. Where the two majors differ, both
 * meanings are listed.
 */
export interface KvKeyvAdapter extends EventEmitter {
  opts: { dialect: string; url: string };
  /** Set by Keyv to its own namespace when the adapter is handed to it. */
  namespace: string | undefined;
  /** Read by Keyv 6 when it is handed the adapter; from then on the adapter serves Keyv 6's contract. */
  readonly capabilities: KeyvStorageCapabilityLike;
  get(key: string): Promise<string | undefined>;
  getMany(keys: string[]): Promise<Array<string | undefined>>;
  /** The third argument is a TTL in ms from Keyv 5, an absolute deadline (epoch ms) from Keyv 6. */
  set(key: string, value: unknown, ttlOrExpires?: number): Promise<boolean>;
  setMany(
    entries: Array<{ key: string; value: unknown; ttl?: number; expires?: number }>,
  ): Promise<boolean[]>;
  delete(key: string): Promise<boolean>;
  /** Keyv 5: whether every key existed. Keyv 6: one answer per key. */
  deleteMany(keys: string[]): Promise<boolean | boolean[]>;
  has(key: string): Promise<boolean>;
  hasMany(keys: string[]): Promise<boolean[]>;
  clear(): Promise<void>;
  /**
   * Keyv 5 (or a direct call): the entries under `namespace:`, keys whole (`namespace:key`).
   * Keyv 6: the entries of the adapter's namespace, keys without it.
   */
  iterator(namespace?: string): AsyncGenerator<[string, string], void>;
  disconnect(): Promise<void>;
}

function bytesOf(value: unknown): Uint8Array {
  if (typeof value !== "string")
    throw new KvArgumentError(
      "toKeyv stores the strings Keyv's serializer produces; keep Keyv's default serializer (do not turn serialization off)",
    );
  return utf8.encode(value);
}

const STORAGE_METHODS = [
  "get",
  "getMany",
  "has",
  "hasMany",
  "set",
  "setMany",
  "delete",
  "deleteMany",
  "clear",
  "disconnect",
  "iterator",
] as const;

const CAPABILITIES: KeyvStorageCapabilityLike = Object.freeze({
  compatible: true,
  store: "keyvStorage",
  methods: Object.fromEntries(
    STORAGE_METHODS.map((m) => [m, { exists: true, methodType: "async" as const }]),
  ),
  expires: true,
});

/**
 * Keyv 5 prefixes every key with `namespace:` before it reaches the adapter, and passes TTLs;
 * Keyv 6 passes keys bare, leaves the namespace to the adapter, and passes absolute deadlines.
 * Nothing in a call tells the two apart, but Keyv 6 reads `capabilities` from every store it is
 * handed, before using it, and Keyv 5 never does: that read switches the adapter to Keyv 6's
 * contract. The namespace is applied as Keyv 5 applied it (`namespace:key`), so both majors
 * address the same entries and an app keeps its data across the upgrade.
 */
class KvKeyvAdapterImpl extends EventEmitter implements KvKeyvAdapter {
  readonly opts: { dialect: string; url: string };
  readonly #store: KvStore;
  #namespace: string | undefined;
  /** The part of the store that holds this namespace's keys, without their prefix. */
  #scoped: KvStore;
  #keyv6 = false;

  constructor(store: KvStore, options: ToKeyvOptions) {
    super();
    const dialect = options.dialect ?? store.name;
    this.opts = { dialect, url: `kvsession://${dialect}` };
    this.#store = store;
    this.#scoped = store;
    this.namespace = options.namespace ?? KEYV5_DEFAULT_NAMESPACE;
  }

  get namespace(): string | undefined {
    return this.#namespace;
  }

  set namespace(namespace: string | undefined) {
    this.#namespace = namespace || undefined;
    this.#scoped = this.#namespace ? this.#store.withPrefix(`${this.#namespace}:`) : this.#store;
  }

  get capabilities(): KeyvStorageCapabilityLike {
    this.#keyv6 = true;
    return CAPABILITIES;
  }

  /** Where Keyv's keys point: under Keyv 5 they carry their namespace already. */
  get #keys(): KvStore {
    return this.#keyv6 ? this.#scoped : this.#store;
  }

  #expiry(n: number | undefined): { ttl: number } | { expiresAt: number } | undefined {
    if (typeof n !== "number" || !(n > 0)) return undefined;
    return this.#keyv6 ? { expiresAt: n } : { ttl: n };
  }

  async get(key: string): Promise<string | undefined> {
    const v = await this.#keys.get(key);
    return v === undefined ? undefined : fromUtf8.decode(v);
  }

  async getMany(keys: string[]): Promise<Array<string | undefined>> {
    return (await this.#keys.getMany(keys)).map((v) => (v === undefined ? undefined : fromUtf8.decode(v)));
  }

  async set(key: string, value: unknown, ttlOrExpires?: number): Promise<boolean> {
    await this.#keys.set(key, bytesOf(value), this.#expiry(ttlOrExpires));
    return true;
  }

  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number; expires?: number }>) {
    await this.#keys.setMany(
      entries.map((e) => ({
        key: e.key,
        value: bytesOf(e.value),
        ...this.#expiry(this.#keyv6 ? e.expires : e.ttl),
      })),
    );
    return entries.map(() => true);
  }

  async delete(key: string): Promise<boolean> {
    return this.#keys.delete(key);
  }

  async deleteMany(keys: string[]): Promise<boolean | boolean[]> {
    const each = await this.#keys.deleteMany(keys);
    // Keyv 5's own fallback answers "all of them existed"; Keyv 6 wants one answer per key.
    return this.#keyv6 ? each : each.every(Boolean);
  }

  async has(key: string): Promise<boolean> {
    return this.#keys.has(key);
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((k) => this.#keys.has(k)));
  }

  async clear(): Promise<void> {
    await this.#scoped.clear();
  }

  async *iterator(namespace?: string): AsyncGenerator<[string, string], void> {
    if (this.#keyv6) {
      for await (const e of this.#scoped.entries("")) yield [e.key, fromUtf8.decode(e.value)];
      return;
    }
    // Keyv 5 strips its prefix from the keys itself.
    const prefix = namespace ? `${namespace}:` : "";
    for await (const e of this.#store.entries(prefix)) yield [e.key, fromUtf8.decode(e.value)];
  }

  async disconnect(): Promise<void> {
    await this.#store.close();
  }
}

/**
 * A kvsession store as a Keyv storage adapter, so existing Keyv code (Keyv 5 or 6) adopts
 * any kvsession driver unchanged: `new Keyv({ store: toKeyv(store) })`.
 *
 * Keyv serialises each entry to a string before it reaches an adapter; that string is stored
 * as UTF-8 bytes with Keyv's expiry as the store's own. Keys are stored as Keyv 5 stored them,
 * `namespace:key`, under both majors, so data written through Keyv 5 is read through Keyv 6.
 * `clear()` deletes only the keys of the Keyv's namespace, never the rest of the store.
 * Failures are thrown as typed KvErrors, which Keyv re-emits as 'error' events. Give each Keyv
 * instance its own adapter: Keyv writes its namespace into the adapter, so one adapter shared
 * by two Keyv instances with different namespaces would mix them.
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
  return new KvKeyvAdapterImpl(store, options);
}
