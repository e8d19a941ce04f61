/** A value or a promise of it: drivers may answer synchronously (memory, SQLite). */
export type Awaitable<T> = T | Promise<T>;

/**
 * The version of a key for compare-and-set. Opaque; `null` means "absent".
 * A driver never hands out the same version twice for one key, even after the
 * key was deleted and written again (no ABA).
 */
export type KvVersion = string | null;

/** What a driver can do. The store wrapper and the conformance suite both read it. */
export interface KvCapabilities {
  /** `native`: the engine expires keys itself; `emulated`: the driver checks deadlines and sweeps. */
  readonly ttl: "native" | "emulated";
  /** Smallest TTL step the engine honours, in ms (1 for all built-in drivers). */
  readonly ttlGranularityMs: number;
  /** `setIfAbsent` is atomic in this driver. */
  readonly setIfAbsent: boolean;
  /** `getVersioned` + `compareAndSet` are available and atomic. */
  readonly compareAndSet: boolean;
  /** Listing returns every key exactly once, in a stable order (keyset pagination); otherwise at least once (e.g. Redis SCAN). */
  readonly orderedListing: boolean;
  /** Longest key this store or view accepts, in UTF-8 bytes (a view's own prefix already deducted). */
  readonly maxKeyBytes: number;
  /** Largest value accepted, in bytes. */
  readonly maxValueBytes: number;
  /**
   * Every operation settles within the turn of the event loop that issued it, before any I/O is
   * polled: an in-process engine (memory, SQLite). Callers that gather work per turn read it.
   */
  readonly settlesInTurn: boolean;
}

/** An entry as a driver returns it. `expiresAt` is an absolute deadline in epoch ms. */
export interface DriverEntry {
  value: Uint8Array;
  expiresAt?: number | undefined;
}

export interface DriverWrite {
  key: string;
  value: Uint8Array;
  expiresAt: number | undefined;
}

export interface DriverListOptions {
  /** Only keys starting with this (may be ""). Match literally: no glob, no LIKE. */
  prefix: string;
  /** Opaque cursor returned by the previous page, or undefined for the first page. */
  cursor: string | undefined;
  /** Page size hint: return at most this many items. */
  limit: number;
  /** Whether values are wanted (listKeys passes false so drivers can skip reading them). */
  values: boolean;
}

export interface DriverListPage {
  items: Array<{ key: string; value?: Uint8Array | undefined; expiresAt?: number | undefined }>;
  /** undefined when the listing is complete. */
  cursor: string | undefined;
}

/**
 * The minimal surface a storage engine implements. Keys arrive validated and
 * already prefixed; deadlines arrive absolute. Everything else (batches,
 * iteration, views, closed-state, TTL conversion, filtering of expired
 * entries) is provided by `createStore`.
 *
 * @example
 * const store = createStore({
 *   name: "my-engine",
 *   capabilities: { ttl: "emulated", setIfAbsent: false, compareAndSet: false },
 *   get: (key) => engine.read(key),
 *   set: (key, value, expiresAt) => engine.write(key, value, expiresAt),
 *   delete: (key) => engine.remove(key),
 *   list: (opts) => engine.scan(opts),
 * });
 */
export interface KvDriver {
  readonly name: string;
  readonly capabilities: Partial<KvCapabilities> & Pick<KvCapabilities, "ttl">;
  get(key: string): Awaitable<DriverEntry | undefined>;
  set(key: string, value: Uint8Array, expiresAt: number | undefined): Awaitable<void>;
  delete(key: string): Awaitable<boolean>;
  has?(key: string): Awaitable<boolean>;
  getMany?(keys: string[]): Awaitable<Array<DriverEntry | undefined>>;
  setMany?(writes: DriverWrite[]): Awaitable<void>;
  deleteMany?(keys: string[]): Awaitable<boolean[]>;
  list(options: DriverListOptions): Awaitable<DriverListPage>;
  /** Delete every key starting with prefix ("" = everything this driver owns). */
  clear?(prefix: string): Awaitable<void>;
  /** Write only when the key is absent or expired; true when written. Must be atomic. */
  setIfAbsent?(key: string, value: Uint8Array, expiresAt: number | undefined): Awaitable<boolean>;
  /** Read the value and its version; an absent or expired key has version null. */
  getVersioned?(key: string): Awaitable<{ entry: DriverEntry | undefined; version: KvVersion }>;
  /**
   * Write only when the current version equals `expected` (null = absent or expired). Must be atomic.
   * Returns the version the write created (what `getVersioned` reads next), or false when nothing was written.
   */
  compareAndSet?(
    key: string,
    expected: KvVersion,
    value: Uint8Array,
    expiresAt: number | undefined,
  ): Awaitable<string | false>;
  close?(): Awaitable<void>;
}

/** TTL options of every write: a relative `ttl` in ms, or an absolute `expiresAt` in epoch ms. */
export interface SetOptions {
  ttl?: number | undefined;
  expiresAt?: number | undefined;
}

export interface KvEntry {
  key: string;
  value: Uint8Array;
  /** Absolute deadline in epoch ms; undefined = no expiry (or not reported by a native-TTL driver). */
  expiresAt?: number | undefined;
}

export interface Versioned {
  value: Uint8Array | undefined;
  version: KvVersion;
  expiresAt?: number | undefined;
}

export interface ListOptions {
  prefix?: string;
  cursor?: string | undefined;
  /** Page size, 1..10_000; default 100. */
  limit?: number;
}

export interface KeyPage {
  keys: string[];
  cursor: string | undefined;
}

export interface EntryPage {
  entries: KvEntry[];
  cursor: string | undefined;
}

export interface BatchWrite extends SetOptions {
  key: string;
  value: Uint8Array;
}

/**
 * The store every application and decorator talks to. Obtain one from a
 * driver package (`createSqliteStore`, `createRedisStore`…), from
 * `createMemoryStore()`, or wrap your own driver with `createStore(driver)`.
 *
 * @example
 * const store = createMemoryStore();
 * const users = store.withPrefix("user:");
 * await users.set("42", new TextEncoder().encode("Ada"), { ttl: 60_000 });
 * for await (const key of users.keys()) console.log(key); // "42"
 */
export interface KvStore {
  readonly name: string;
  readonly capabilities: KvCapabilities;
  /** The prefix this view adds to every key ("" for the root store). */
  readonly prefix: string;
  get(key: string): Promise<Uint8Array | undefined>;
  getEntry(key: string): Promise<KvEntry | undefined>;
  has(key: string): Promise<boolean>;
  /**
   * Stores `value`'s bytes. Like `socket.write`, a network driver may read `value` until the
   * promise settles: change those bytes only after it does (what was stored never changes after).
   */
  set(key: string, value: Uint8Array, options?: SetOptions): Promise<void>;
  /** true when a live key was deleted. */
  delete(key: string): Promise<boolean>;
  /** Results in the order of `keys`. */
  getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
  setMany(writes: readonly BatchWrite[]): Promise<void>;
  /** One boolean per key, in order: whether that key existed. */
  deleteMany(keys: readonly string[]): Promise<boolean[]>;
  setIfAbsent(key: string, value: Uint8Array, options?: SetOptions): Promise<boolean>;
  getVersioned(key: string): Promise<Versioned>;
  /**
   * Writes only when the key's version is still `expected` (from `getVersioned`; null = absent).
   * Resolves with the new version when written (a non-empty string: pass it to the next
   * compareAndSet without reading again), or false when the key had changed.
   * @example
   * ```ts fragment
   * const { value, version } = await store.getVersioned("counter");
   * const next = await store.compareAndSet("counter", version, bump(value));
   * if (next === false) retry();
   * ```
   */
  compareAndSet(
    key: string,
    expected: KvVersion,
    value: Uint8Array,
    options?: SetOptions,
  ): Promise<string | false>;
  listKeys(options?: ListOptions): Promise<KeyPage>;
  listEntries(options?: ListOptions): Promise<EntryPage>;
  keys(prefix?: string, pageSize?: number): AsyncIterableIterator<string>;
  entries(prefix?: string, pageSize?: number): AsyncIterableIterator<KvEntry>;
  /** Deletes every key of this view, and only those. */
  clear(): Promise<void>;
  /** An immutable view whose keys are all prefixed; nested views concatenate. */
  withPrefix(prefix: string): KvStore;
  /** Closes the underlying driver; every view of it is closed too. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
