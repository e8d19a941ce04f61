import {
  KvArgumentError,
  KvClosedError,
  KvKeyError,
  KvUnsupportedError,
  KvValueTooLargeError,
} from "./errors.js";
import { assertValidKey, assertValidPrefix, DEFAULT_MAX_KEY_BYTES, utf8Length } from "./keys.js";
import { deadlineOf, isExpired } from "./ttl.js";
import type {
  BatchWrite,
  DriverEntry,
  EntryPage,
  KeyPage,
  KvCapabilities,
  KvDriver,
  KvEntry,
  KvStore,
  KvVersion,
  ListOptions,
  SetOptions,
  Versioned,
} from "./types.js";

/** 512 MiB: Redis's own limit; drivers with a lower one declare it. */
export const DEFAULT_MAX_VALUE_BYTES = 512 * 1024 * 1024;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 10_000;

/** Fills in the capabilities a driver left out with the conservative defaults. */
export function resolveCapabilities(c: KvDriver["capabilities"]): KvCapabilities {
  return Object.freeze({
    ttl: c.ttl,
    ttlGranularityMs: c.ttlGranularityMs ?? 1,
    setIfAbsent: c.setIfAbsent ?? false,
    compareAndSet: c.compareAndSet ?? false,
    orderedListing: c.orderedListing ?? false,
    maxKeyBytes: c.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES,
    maxValueBytes: c.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
    settlesInTurn: c.settlesInTurn ?? false,
  });
}

/**
 * Marks a driver that forwards every key unchanged to a store underneath (`delegateDriver`), so a
 * store made from it knows the prefix its keys get on the way down. A symbol, so the spread by
 * which decorators override methods carries it along.
 */
export const FORWARDS_TO: unique symbol = Symbol("kvsession.forwardsTo");

const storagePrefixes = new WeakMap<KvStore, string>();

/**
 * The prefix every key of `store` gets before it is stored: its own view's prefix, and those of
 * the views that the decorators it is built on forward to. What `encrypted` binds a value to.
 * A store not made by `createStore` reports only its own prefix.
 */
export function storagePrefix(store: KvStore): string {
  return storagePrefixes.get(store) ?? store.prefix;
}

/** Shared by a root store and all of its prefix views, so closing one closes all. */
interface Shared {
  driver: KvDriver;
  caps: KvCapabilities;
  closed: boolean;
  closing: Promise<void> | undefined;
  /** The prefix the root's keys get below it (non-empty only for a decorator over a view). */
  below: string;
}

/**
 * Turns a minimal driver into a full `KvStore`. Driver authors implement only
 * `KvDriver`; this wrapper guarantees the parts of the contract that must not
 * differ between drivers: key validation, TTL units, that an expired entry is
 * never returned, closed-state errors, per-item batches and prefix views.
 *
 * @example
 * import { createStore } from "@kvsession/kv/driver";
 * export const createMyStore = (opts) => createStore(myDriver(opts));
 */
export function createStore(driver: KvDriver): KvStore {
  const under = (driver as { [FORWARDS_TO]?: KvStore })[FORWARDS_TO];
  return makeView(
    {
      driver,
      caps: resolveCapabilities(driver.capabilities),
      closed: false,
      closing: undefined,
      below: under === undefined ? "" : storagePrefix(under),
    },
    "",
  );
}

function live(entry: DriverEntry | undefined, now: number): entry is DriverEntry {
  return entry !== undefined && !isExpired(entry.expiresAt, now);
}

function makeView(shared: Shared, prefix: string): KvStore {
  const { driver } = shared;
  const name = driver.name;
  const plen = prefix.length;
  // A view reports the key length left after its prefix, so layers above it see the real limit.
  const caps: KvCapabilities =
    plen === 0
      ? shared.caps
      : Object.freeze({ ...shared.caps, maxKeyBytes: shared.caps.maxKeyBytes - utf8Length(prefix) });
  if (caps.maxKeyBytes < 1) throw new KvKeyError(`prefix "${prefix.slice(0, 40)}…" leaves no room for keys`);

  function open(): void {
    if (shared.closed) throw new KvClosedError(name);
  }
  function full(key: string): string {
    assertValidKey(key, caps.maxKeyBytes);
    return plen === 0 ? key : prefix + key;
  }
  function checkValue(value: Uint8Array): void {
    if (!(value instanceof Uint8Array))
      throw new KvArgumentError(
        "value must be a Uint8Array; use withCodec(store, json) to store other types",
      );
    if (value.byteLength > caps.maxValueBytes)
      throw new KvValueTooLargeError(value.byteLength, caps.maxValueBytes, name);
  }
  function page(options: ListOptions | undefined): {
    prefix: string;
    cursor: string | undefined;
    limit: number;
  } {
    const sub = options?.prefix ?? "";
    assertValidPrefix(sub);
    const limit = options?.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw new KvArgumentError(`limit must be an integer from 1 to ${MAX_PAGE}, got ${String(limit)}`);
    const cursor = options?.cursor;
    if (cursor !== undefined && (typeof cursor !== "string" || cursor === ""))
      throw new KvArgumentError("cursor must be the non-empty string returned by the previous page");
    return { prefix: prefix + sub, cursor, limit };
  }
  const strip = plen === 0 ? (k: string) => k : (k: string) => k.slice(plen);

  async function listPage(options: ListOptions | undefined, values: boolean) {
    open();
    const p = page(options);
    const res = await driver.list({ prefix: p.prefix, cursor: p.cursor, limit: p.limit, values });
    const now = Date.now();
    // A driver may over-report; never let a key outside the view, or an expired one, escape.
    const items = res.items.filter((it) => it.key.startsWith(p.prefix) && !isExpired(it.expiresAt, now));
    return { items, cursor: res.cursor };
  }

  const store: KvStore = {
    name,
    capabilities: caps,
    prefix,

    async get(key) {
      open();
      let e = driver.get(full(key));
      // Synchronous drivers (memory, SQLite) skip a microtask tick on the hottest path.
      if (e instanceof Promise) e = await e;
      return e !== undefined && (e.expiresAt === undefined || e.expiresAt > Date.now()) ? e.value : undefined;
    },

    async getEntry(key) {
      open();
      const k = full(key);
      const e = await driver.get(k);
      return live(e, Date.now()) ? { key, value: e.value, expiresAt: e.expiresAt } : undefined;
    },

    async has(key) {
      open();
      const k = full(key);
      if (driver.has) return driver.has(k);
      return live(await driver.get(k), Date.now());
    },

    async set(key, value, options) {
      open();
      const k = full(key);
      checkValue(value);
      const deadline = options === undefined ? undefined : deadlineOf(options);
      // A deadline already past means "gone now": never store what no read may return.
      if (deadline !== undefined && deadline <= Date.now()) {
        await driver.delete(k);
        return;
      }
      const r = driver.set(k, value, deadline);
      if (r instanceof Promise) await r;
    },

    async delete(key) {
      open();
      return driver.delete(full(key));
    },

    async getMany(keys) {
      open();
      const ks = keys.map(full);
      if (ks.length === 0) return [];
      const res = driver.getMany ? await driver.getMany(ks) : await Promise.all(ks.map((k) => driver.get(k)));
      const now = Date.now();
      return res.map((e) => (live(e, now) ? e.value : undefined));
    },

    async setMany(writes) {
      open();
      const now = Date.now();
      const prepared = writes.map((w: BatchWrite) => {
        const key = full(w.key);
        checkValue(w.value);
        return { key, value: w.value, expiresAt: deadlineOf(w, now) };
      });
      if (prepared.length === 0) return;
      const gone = prepared.filter((w) => w.expiresAt !== undefined && w.expiresAt <= now);
      const kept = gone.length === 0 ? prepared : prepared.filter((w) => !gone.includes(w));
      if (driver.setMany) await driver.setMany(kept);
      else await Promise.all(kept.map((w) => driver.set(w.key, w.value, w.expiresAt)));
      if (gone.length > 0) await Promise.all(gone.map((w) => driver.delete(w.key)));
    },

    async deleteMany(keys) {
      open();
      const ks = keys.map(full);
      if (ks.length === 0) return [];
      if (driver.deleteMany) return driver.deleteMany(ks);
      return Promise.all(ks.map((k) => driver.delete(k)));
    },

    async setIfAbsent(key, value, options) {
      open();
      if (!driver.setIfAbsent || !caps.setIfAbsent) throw new KvUnsupportedError("setIfAbsent", name);
      const k = full(key);
      checkValue(value);
      return driver.setIfAbsent(k, value, futureDeadline(options));
    },

    async getVersioned(key): Promise<Versioned> {
      open();
      if (!driver.getVersioned || !caps.compareAndSet) throw new KvUnsupportedError("getVersioned", name);
      let r = driver.getVersioned(full(key));
      // As in get: a synchronous driver skips a microtask tick (the session layer's read).
      if (r instanceof Promise) r = await r;
      const { entry, version } = r;
      // An expired entry is absent, and so is its version: CAS(null) must be able to replace it.
      if (!live(entry, Date.now())) return { value: undefined, version: null };
      return { value: entry.value, version, expiresAt: entry.expiresAt };
    },

    async compareAndSet(key: string, expected: KvVersion, value: Uint8Array, options?: SetOptions) {
      open();
      if (!driver.compareAndSet || !caps.compareAndSet) throw new KvUnsupportedError("compareAndSet", name);
      if (expected !== null && typeof expected !== "string")
        throw new KvArgumentError("expected version must be a string from getVersioned, or null for absent");
      const k = full(key);
      checkValue(value);
      return driver.compareAndSet(k, expected, value, futureDeadline(options));
    },

    async listKeys(options): Promise<KeyPage> {
      const { items, cursor } = await listPage(options, false);
      return { keys: items.map((it) => strip(it.key)), cursor };
    },

    async listEntries(options): Promise<EntryPage> {
      const { items, cursor } = await listPage(options, true);
      const entries: KvEntry[] = [];
      for (const it of items) {
        if (it.value !== undefined)
          entries.push({ key: strip(it.key), value: it.value, expiresAt: it.expiresAt });
      }
      return { entries, cursor };
    },

    async *keys(sub = "", pageSize = DEFAULT_PAGE) {
      let cursor: string | undefined;
      do {
        const p = await store.listKeys({ prefix: sub, cursor, limit: pageSize });
        yield* p.keys;
        cursor = p.cursor;
      } while (cursor !== undefined);
    },

    async *entries(sub = "", pageSize = DEFAULT_PAGE) {
      let cursor: string | undefined;
      do {
        const p = await store.listEntries({ prefix: sub, cursor, limit: pageSize });
        yield* p.entries;
        cursor = p.cursor;
      } while (cursor !== undefined);
    },

    async clear() {
      open();
      if (driver.clear) {
        await driver.clear(prefix);
        return;
      }
      // Fallback: page through and delete; each page is deleted before the next is read.
      let cursor: string | undefined;
      do {
        const res = await driver.list({ prefix, cursor, limit: 500, values: false });
        const keys = res.items.map((i) => i.key).filter((k) => k.startsWith(prefix));
        if (keys.length > 0) {
          if (driver.deleteMany) await driver.deleteMany(keys);
          else await Promise.all(keys.map((k) => driver.delete(k)));
        }
        cursor = res.cursor;
      } while (cursor !== undefined);
    },

    withPrefix(sub) {
      assertValidPrefix(sub);
      if (sub === "") return store;
      return makeView(shared, prefix + sub);
    },

    async close() {
      if (shared.closing) return shared.closing;
      shared.closed = true;
      shared.closing = Promise.resolve(driver.close?.());
      return shared.closing;
    },

    [Symbol.asyncDispose]() {
      return store.close();
    },
  };
  storagePrefixes.set(store, shared.below + prefix);
  return Object.freeze(store);
}

function futureDeadline(options: SetOptions | undefined): number | undefined {
  const now = Date.now();
  const d = deadlineOf(options, now);
  if (d !== undefined && d <= now)
    throw new KvArgumentError("expiresAt is in the past; a conditional write must create a live entry");
  return d;
}
