import type { Codec } from "./codec.js";
import { json } from "./codec.js";
import type { KvStore, KvVersion, ListOptions, SetOptions } from "./types.js";

/**
 * A store of typed values: the same contract, with a codec between the caller
 * and the bytes. `store` is the byte store underneath, for listing and views.
 *
 * @example
 * const carts = withCodec(createMemoryStore().withPrefix("cart:"), json<{ items: string[] }>());
 * await carts.set("c1", { items: ["apple"] }, { ttl: 3_600_000 });
 * (await carts.get("c1"))?.items; // ["apple"]
 */
export interface TypedStore<T> {
  readonly store: KvStore;
  readonly codec: Codec<T>;
  get(key: string): Promise<T | undefined>;
  set(key: string, value: T, options?: SetOptions): Promise<void>;
  has(key: string): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  getMany(keys: readonly string[]): Promise<Array<T | undefined>>;
  setMany(writes: ReadonlyArray<{ key: string; value: T } & SetOptions>): Promise<void>;
  setIfAbsent(key: string, value: T, options?: SetOptions): Promise<boolean>;
  getVersioned(
    key: string,
  ): Promise<{ value: T | undefined; version: KvVersion; expiresAt?: number | undefined }>;
  compareAndSet(key: string, expected: KvVersion, value: T, options?: SetOptions): Promise<string | false>;
  entries(prefix?: string): AsyncIterableIterator<[string, T]>;
  listEntries(options?: ListOptions): Promise<{ entries: Array<[string, T]>; cursor: string | undefined }>;
  withPrefix(prefix: string): TypedStore<T>;
}

export function withCodec<T = unknown>(store: KvStore, codec: Codec<T> = json<T>()): TypedStore<T> {
  const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : codec.decode(b));
  const typed: TypedStore<T> = {
    store,
    codec,
    get: async (key) => dec(await store.get(key)),
    set: (key, value, options) => store.set(key, codec.encode(value), options),
    has: (key) => store.has(key),
    delete: (key) => store.delete(key),
    getMany: async (keys) => (await store.getMany(keys)).map(dec),
    setMany: (writes) => store.setMany(writes.map((w) => ({ ...w, value: codec.encode(w.value) }))),
    setIfAbsent: (key, value, options) => store.setIfAbsent(key, codec.encode(value), options),
    async getVersioned(key) {
      const v = await store.getVersioned(key);
      return { value: dec(v.value), version: v.version, expiresAt: v.expiresAt };
    },
    compareAndSet: (key, expected, value, options) =>
      store.compareAndSet(key, expected, codec.encode(value), options),
    async *entries(prefix) {
      for await (const e of store.entries(prefix)) yield [e.key, codec.decode(e.value)];
    },
    async listEntries(options) {
      const page = await store.listEntries(options);
      return { entries: page.entries.map((e) => [e.key, codec.decode(e.value)]), cursor: page.cursor };
    },
    withPrefix: (prefix) => withCodec(store.withPrefix(prefix), codec),
  };
  return Object.freeze(typed);
}
