import { KvArgumentError, type KvStore, KvUnsupportedError } from "@kvsession/kv";
import {
  assertKeysetCursor,
  createStore,
  DEFAULT_MAX_KEY_BYTES,
  type DriverEntry,
  type DriverListPage,
  type DriverWrite,
  type KvDriver,
  utf8Length,
} from "@kvsession/kv/driver";
import { toKvError } from "./errors.js";
import { decodeRecord, encodeRecord, expiresOf } from "./record.js";
import type { Keyv5Like, Keyv6Like, KeyvAdapterLike, KeyvLike } from "./shapes.js";

export interface FromKeyvOptions {
  /**
   * Longest key the adapter's engine takes, its namespace prefix included. Default 1024.
   * @keyv/postgres and @keyv/mysql declare `VARCHAR(255)` keys by default: pass 255 there.
   */
  maxKeyBytes?: number;
  /** Largest value accepted, before base64. Default 64 MiB. */
  maxValueBytes?: number;
  /** Deletes run at most this many at a time during clear(). Default 64. */
  clearConcurrency?: number;
}

const DEFAULT_MAX_VALUE = 64 * 1024 * 1024;

function isKeyv5(x: unknown): x is Keyv5Like {
  const k = x as Partial<Keyv5Like> | undefined;
  return (
    typeof k?.getRaw === "function" && typeof k?.opts === "object" && k.opts !== null && "store" in k.opts
  );
}

/** Keyv 6 dropped `opts`; its resolved adapter is `keyv.store`. */
function isKeyv6(x: unknown): x is Keyv6Like {
  const k = x as Partial<Keyv6Like> & { opts?: unknown };
  return typeof k?.getRaw === "function" && k.opts === undefined && typeof k.store?.get === "function";
}

/**
 * Any Keyv storage adapter (a Keyv 5 or 6 instance, or the adapter alone: @keyv/redis,
 * @keyv/sqlite, @keyv/postgres, Keyv's own Map, Keyv 6's KeyvMemoryAdapter…) as a
 * kvsession store. Keyv 6 adapters, which declare `capabilities.expires`, are given
 * absolute deadlines; the others a TTL.
 *
 * Capabilities are declared honestly: Keyv has no atomic conditional write,
 * so `setIfAbsent` and `compareAndSet` are unsupported. Listing works for a
 * Map and for adapters with an `iterator`, at the cost of one full pass over
 * the namespace per page (see the README); other adapters refuse listing
 * and `clear()` with KvUnsupportedError. `close()` disconnects the adapter.
 *
 * Given a Keyv instance, the store reads and writes the same keys and
 * record format as that instance (Keyv 5's namespace prefix, or Keyv 6's
 * adapter with its namespace), so both see each other's data. Adapter errors reach you only if the adapter throws:
 * create @keyv/redis with `throwOnErrors: true`; inside a Keyv, adapters that
 * only emit 'error' turn failures into misses, which no wrapper can undo.
 *
 * @example
 * import KeyvRedis from "@keyv/redis";
 * import { fromKeyv } from "@kvsession/kv-keyv";
 * const store = fromKeyv(new KeyvRedis("redis://127.0.0.1:6379", { namespace: "app", throwOnErrors: true }));
 * await store.set("k", new Uint8Array([1, 2, 3]), { ttl: 60_000 });
 */
export function fromKeyv(
  keyvOrAdapter: KeyvLike | KeyvAdapterLike | Map<string, unknown>,
  options: FromKeyvOptions = {},
): KvStore {
  let adapter: KeyvAdapterLike | Map<string, unknown>;
  let rawPrefix = "";
  if (isKeyv5(keyvOrAdapter)) {
    // Compressed records cannot be read or written in Keyv's plain format: refuse rather than corrupt.
    if (keyvOrAdapter.opts.compression)
      throw new KvArgumentError(
        "fromKeyv cannot share a Keyv instance that uses compression; pass its adapter (keyv.opts.store) without the Keyv instead",
      );
    adapter = keyvOrAdapter.opts.store;
    const ns = keyvOrAdapter.namespace;
    // Keyv 5's own key prefix, so the store and the Keyv instance address the same entries.
    if (keyvOrAdapter.useKeyPrefix !== false && ns) rawPrefix = `${ns}:`;
  } else if (isKeyv6(keyvOrAdapter)) {
    // Records that are compressed, encrypted or not serialised to text are not in Keyv's plain format.
    if (keyvOrAdapter.compression || keyvOrAdapter.encryption || !keyvOrAdapter.serialization)
      throw new KvArgumentError(
        "fromKeyv cannot share a Keyv instance that uses compression or encryption, or has serialization turned off; pass its adapter (keyv.store) without the Keyv instead",
      );
    // Keyv 6 leaves the namespace to its adapter, which already holds Keyv's namespace.
    adapter = keyvOrAdapter.store;
  } else adapter = keyvOrAdapter;
  if (
    typeof adapter?.get !== "function" ||
    typeof adapter.set !== "function" ||
    typeof adapter.delete !== "function"
  )
    throw new KvArgumentError("fromKeyv needs a Keyv instance, a Keyv storage adapter or a Map");

  const maxKeyBytes = (options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES) - utf8Length(rawPrefix);
  if (maxKeyBytes < 1)
    throw new KvArgumentError("maxKeyBytes leaves no room after the Keyv namespace prefix");
  return createStore(keyvDriver(adapter, rawPrefix, { ...options, maxKeyBytes }));
}

function keyvDriver(
  adapter: KeyvAdapterLike | Map<string, unknown>,
  rawPrefix: string,
  options: FromKeyvOptions & { maxKeyBytes: number },
): KvDriver {
  const isMap = adapter instanceof Map;
  // Keyv 6 adapters take an absolute deadline where Keyv 5 adapters take a TTL.
  const takesDeadline = !isMap && (adapter as KeyvAdapterLike).capabilities?.expires === true;
  const label = isMap
    ? "Map"
    : (((adapter as KeyvAdapterLike).opts as { dialect?: string } | undefined)?.dialect ??
      adapter.constructor?.name ??
      "adapter");
  const name = `keyv:${label}`;
  const raw = rawPrefix === "" ? (k: string) => k : (k: string) => rawPrefix + k;
  const plen = rawPrefix.length;

  async function call<T>(op: string, fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toKvError(error, op, label);
    }
  }

  async function read(key: string): Promise<DriverEntry | undefined> {
    const r = await call("get", () => adapter.get(raw(key)));
    return decodeRecord(r, key);
  }

  function ttlOf(expiresAt: number | undefined): number | undefined {
    // The record carries the exact deadline; the adapter's TTL (if it has one) only reclaims space.
    return expiresAt === undefined ? undefined : Math.max(1, expiresAt - Date.now());
  }

  async function write(key: string, value: Uint8Array, expiresAt: number | undefined): Promise<void> {
    const rec = encodeRecord(value, expiresAt);
    if (isMap) {
      await call("set", () => adapter.set(raw(key), rec));
      return;
    }
    const expiry = takesDeadline ? expiresAt : ttlOf(expiresAt);
    await call("set", () => adapter.set(raw(key), rec, expiry));
  }

  async function remove(key: string): Promise<boolean> {
    // Keyv adapters report "a row was there", expired or not; the contract wants "a live key was deleted".
    const before = await read(key);
    // Absent: nothing to delete, and one round trip saved.
    if (before === undefined) return false;
    const existed = await call("delete", () => adapter.delete(raw(key)));
    return existed === true && (before.expiresAt === undefined || before.expiresAt > Date.now());
  }

  /** [raw key, raw value] pairs of this store's keys, from the adapter's own iteration. */
  async function* scan(): AsyncGenerator<[string, unknown]> {
    if (isMap) {
      // A live Map iterator tolerates writes between steps; a key added meanwhile may or may not be seen, as with SCAN.
      for (const k of adapter.keys()) if (k.startsWith(rawPrefix)) yield [k, adapter.get(k)];
      return;
    }
    const it = (adapter as KeyvAdapterLike).iterator;
    if (typeof it !== "function") throw new KvUnsupportedError("listing (the adapter has no iterator)", name);
    for await (const pair of it.call(adapter, (adapter as KeyvAdapterLike).namespace)) {
      const [k, v] = pair as [string, unknown];
      // Adapters match their namespace with LIKE or a glob (case-insensitive in SQLite): re-check literally.
      if (typeof k === "string" && k.startsWith(rawPrefix)) yield [k, v];
    }
  }

  return {
    name,
    capabilities: {
      ttl: "emulated",
      ttlGranularityMs: 1,
      setIfAbsent: false,
      compareAndSet: false,
      // Each page is the smallest keys above the cursor, so a key present throughout is listed exactly once.
      orderedListing: true,
      maxKeyBytes: options.maxKeyBytes,
      maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_VALUE,
    },

    get: read,
    set: write,
    delete: remove,

    async getMany(keys) {
      const getMany = (adapter as KeyvAdapterLike).getMany;
      if (isMap || typeof getMany !== "function") return Promise.all(keys.map(read));
      const rows = await call("getMany", () => getMany.call(adapter, keys.map(raw)));
      return keys.map((k, i) => decodeRecord(rows[i], k));
    },

    async setMany(writes: DriverWrite[]) {
      const setMany = (adapter as KeyvAdapterLike).setMany;
      if (isMap || typeof setMany !== "function") {
        // Keep the order of repeated keys: the last write of a key wins, as in one sequential pass.
        const last = new Map<string, DriverWrite>();
        for (const w of writes) last.set(w.key, w);
        await Promise.all([...last.values()].map((w) => write(w.key, w.value, w.expiresAt)));
        return;
      }
      const entries = writes.map((w) => ({
        key: raw(w.key),
        value: encodeRecord(w.value, w.expiresAt),
        ...(takesDeadline ? { expires: w.expiresAt } : { ttl: ttlOf(w.expiresAt) }),
      }));
      await call("setMany", () => setMany.call(adapter, entries));
    },

    async deleteMany(keys) {
      // Keyv's deleteMany answers one boolean for the whole batch; the contract wants one per key.
      const out: boolean[] = [];
      for (const k of keys) out.push(await remove(k));
      return out;
    },

    async list({ prefix, cursor, limit, values }): Promise<DriverListPage> {
      assertKeysetCursor(cursor);
      const from = rawPrefix + prefix;
      const after = cursor === undefined ? undefined : rawPrefix + cursor;
      // Keep only the `limit` smallest keys above the cursor: memory stays O(limit) whatever the namespace size.
      const best: Array<[string, unknown, number | undefined]> = [];
      const now = Date.now();
      for await (const [k, v] of scan()) {
        if (!k.startsWith(from) || (after !== undefined && k <= after)) continue;
        if (best.length === limit && k >= best[limit - 1]![0]) continue;
        const expiresAt = expiresOf(v, k);
        // Skip expired entries here, so a page is not filled with keys the store would then drop.
        if (expiresAt !== undefined && expiresAt <= now) continue;
        let lo = 0;
        let hi = best.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (best[mid]![0] < k) lo = mid + 1;
          else hi = mid;
        }
        if (best[lo]?.[0] === k) continue; // SCAN may return a key twice
        best.splice(lo, 0, [k, values ? v : undefined, expiresAt]);
        if (best.length > limit) best.pop();
      }
      const items = [];
      for (const [k, v, expiresAt] of best) {
        const key = k.slice(plen);
        if (!values) {
          items.push({ key, expiresAt });
          continue;
        }
        const rec = decodeRecord(v, key);
        if (rec !== undefined) items.push({ key, value: rec.value, expiresAt: rec.expiresAt });
      }
      const next = best.length === limit ? best[limit - 1]![0].slice(plen) : undefined;
      return { items, cursor: next };
    },

    async clear(prefix) {
      const from = rawPrefix + prefix;
      const doomed: string[] = [];
      for await (const [k] of scan()) if (k.startsWith(from)) doomed.push(k);
      const width = options.clearConcurrency ?? 64;
      for (let i = 0; i < doomed.length; i += width)
        await Promise.all(doomed.slice(i, i + width).map((k) => call("clear", () => adapter.delete(k))));
    },

    async close() {
      if (!isMap && typeof (adapter as KeyvAdapterLike).disconnect === "function")
        await call("disconnect", () => (adapter as KeyvAdapterLike).disconnect!());
    },
  };
}
