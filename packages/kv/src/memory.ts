import { createDeadlineHeap, type HeapItem } from "./deadline-heap.js";
import { KvArgumentError } from "./errors.js";
import { assertKeysetCursor } from "./keys.js";
import { createSlabs, SLAB_VALUE_MAX, type Slab } from "./slabs.js";
import { createStore } from "./store.js";
import type { DriverEntry, DriverListPage, KvDriver, KvStore, KvVersion } from "./types.js";

export interface MemoryStoreOptions {
  /** Evict the least recently used entries beyond this many. Default: unbounded. */
  maxEntries?: number;
  /**
   * Evict the least recently used entries once keys + values (+ 64 bytes per entry)
   * exceed this many bytes. Default: unbounded. With this bound each value gets
   * an ArrayBuffer of its own, so the bound is the memory really held; without
   * it, values of at most 4 KiB are packed into 64 KiB slabs (faster writes),
   * which hold at most twice the live bytes again in dead ones before the
   * store compacts them.
   */
  maxBytes?: number;
  /** How often expired entries are reclaimed proactively, in ms. Default 1000; the timer never keeps the process alive. */
  sweepIntervalMs?: number;
}

interface Slot {
  /** The value is `len` bytes at `off` in `bytes`: one of the store's slabs (small values) or bytes of its own (large ones). */
  bytes: Uint8Array;
  off: number;
  len: number;
  /** The slab `bytes` belongs to; undefined for a large value. */
  slab: Slab | undefined;
  /**
   * A view of exactly the value, made on first read and dropped by the next
   * write: a value read many times pays for it once, and a write never makes
   * an object that outlives it (those were collected in the old generation).
   */
  view: Uint8Array | undefined;
  expiresAt: number | undefined;
  /** Monotonic per store: the CAS version. */
  stamp: number;
  size: number;
  /**
   * This entry's item in the expiry heap, due at or before `expiresAt`; any other item of its key is
   * stale. A write whose deadline is no earlier leaves it be, and the sweep re-arms it when it comes
   * due early: a session store pushes its deadline later on every write, and an item per write was a
   * long-lived object per write for the collector.
   */
  armed: HeapItem | undefined;
}

/**
 * Copies handed to callers are carved from a shared read pool, like Node's
 * own Buffer pool but without its argument checks (a large share of a read's
 * cost); they are short-lived, and only the caller's copy pins its chunk.
 */
const READ_POOL = 64 * 1024;
let pool = new ArrayBuffer(READ_POOL);
let poolOffset = 0;

function copy(slot: Slot): Uint8Array {
  const n = slot.len;
  let src = slot.slab === undefined ? slot.bytes : slot.view;
  if (src === undefined) {
    src = new Uint8Array(slot.bytes.buffer, slot.bytes.byteOffset + slot.off, n);
    slot.view = src;
  }
  if (n > READ_POOL / 8) return new Uint8Array(src);
  if (poolOffset + n > READ_POOL) {
    pool = new ArrayBuffer(READ_POOL);
    poolOffset = 0;
  }
  const out = new Uint8Array(pool, poolOffset, n);
  out.set(src);
  // Keep later views 8-byte aligned, as Node's pool does, for callers that build Float64Array views.
  poolOffset = (poolOffset + n + 7) & ~7;
  return out;
}

const EMPTY = new Uint8Array(0);

/** Per-entry bookkeeping counted against maxBytes besides key and value. */
const OVERHEAD = 64;

/**
 * An in-process store: exact TTL, LRU bounds, every capability native.
 * Values are copied in and out, so callers can never mutate what is stored.
 *
 * @example
 * import { createMemoryStore } from "@kvsession/kv";
 * const store = createMemoryStore({ maxEntries: 10_000 });
 * await store.set("k", new Uint8Array([1, 2, 3]), { ttl: 1000 });
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): KvStore {
  return createStore(memoryDriver(options));
}

export function memoryDriver(options: MemoryStoreOptions = {}): KvDriver {
  const maxEntries = options.maxEntries ?? Number.POSITIVE_INFINITY;
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  const sweepMs = options.sweepIntervalMs ?? 1000;
  for (const [k, v] of Object.entries({ maxEntries, maxBytes, sweepIntervalMs: sweepMs })) {
    if (!(v > 0))
      throw new KvArgumentError(`memory store option ${k} must be a positive number, got ${String(v)}`);
  }

  // Map iteration order is insertion order; re-inserting on access makes it LRU order.
  const map = new Map<string, Slot>();
  const heap = createDeadlineHeap();
  const slabs = createSlabs();
  /** Keys, values and per-entry overhead of the live entries. */
  let bytes = 0;
  let stamp = 0;

  // With a byte bound every value gets a buffer of its own, so the bound is exactly the memory held;
  // packed slabs hold dead bytes between compactions, which only an unbounded store can afford.
  const slabMax = maxBytes === Number.POSITIVE_INFINITY ? SLAB_VALUE_MAX : -1;

  /** Where a value is kept: a copy either way, so the caller can never mutate stored bytes. */
  function keep(slot: Slot, value: Uint8Array): void {
    slot.len = value.byteLength;
    slot.view = undefined;
    if (value.byteLength <= slabMax) {
      slot.off = slabs.put(value);
      slot.slab = slabs.current();
      slot.bytes = slot.slab.bytes;
    } else {
      slot.bytes = new Uint8Array(value);
      slot.off = 0;
      slot.slab = undefined;
    }
  }

  function release(slot: Slot): void {
    if (slot.slab === undefined) return;
    slabs.release(slot.slab, slot.len);
    if (slabs.due()) compact();
  }

  /** Moves the live values out of half-empty slabs so those can be dropped (never changes which keys exist). */
  function compact(): void {
    for (const slot of map.values()) {
      const old = slot.slab;
      if (old === undefined || !slabs.sparse(old)) continue;
      const length = slot.len;
      keep(slot, old.bytes.subarray(slot.off, slot.off + length));
      slabs.release(old, length);
    }
  }

  function remove(key: string, slot: Slot): void {
    map.delete(key);
    bytes -= slot.size;
    release(slot);
  }

  const bounded = maxEntries !== Number.POSITIVE_INFINITY || maxBytes !== Number.POSITIVE_INFINITY;

  function write(key: string, value: Uint8Array, expiresAt: number | undefined): void {
    const size = key.length * 2 + value.byteLength + OVERHEAD;
    const old = map.get(key);
    let slot: Slot;
    if (old !== undefined && !bounded) {
      // Unbounded: no LRU order to keep, so overwrite in place and skip two hash operations.
      bytes += size - old.size;
      const was = old.slab;
      const wasLength = old.len;
      keep(old, value);
      old.expiresAt = expiresAt;
      old.stamp = ++stamp;
      old.size = size;
      slot = old;
      if (was !== undefined) {
        slabs.release(was, wasLength);
        if (slabs.due()) compact();
      }
    } else {
      if (old !== undefined) remove(key, old);
      slot = {
        bytes: EMPTY,
        off: 0,
        len: 0,
        slab: undefined,
        view: undefined,
        expiresAt,
        stamp: ++stamp,
        size,
        armed: old?.armed,
      };
      keep(slot, value);
      map.set(key, slot);
      bytes += size;
      if (bounded) evict();
    }
    if (expiresAt !== undefined) arm(slot, key, expiresAt);
  }

  function arm(slot: Slot, key: string, at: number): void {
    if (slot.armed !== undefined && slot.armed.at <= at) return;
    slot.armed = { at, key, stamp: slot.stamp };
    heap.push(slot.armed);
  }

  function evict(): void {
    while (map.size > maxEntries || (bytes > maxBytes && map.size > 1)) {
      const oldest = map.keys().next().value as string;
      remove(oldest, map.get(oldest)!);
    }
  }

  /** The live slot of key, or undefined; an expired one is dropped on sight. */
  function read(key: string): Slot | undefined {
    const slot = map.get(key);
    if (slot === undefined) return undefined;
    // Date.now() is a real cost at this rate: only pay for it when the entry has a deadline.
    if (slot.expiresAt !== undefined && slot.expiresAt <= Date.now()) {
      remove(key, slot);
      return undefined;
    }
    return slot;
  }

  function touch(key: string, slot: Slot): void {
    if (!bounded) return;
    map.delete(key);
    map.set(key, slot);
  }

  function sweep(): void {
    const now = Date.now();
    for (let top = heap.peek(); top !== undefined && top.at <= now; top = heap.peek()) {
      heap.pop();
      const slot = map.get(top.key);
      if (slot === undefined || slot.armed !== top) continue;
      if (slot.expiresAt === undefined) slot.armed = undefined;
      else if (slot.expiresAt <= now) remove(top.key, slot);
      else {
        // Due early: the deadline moved later since it was armed. The same item goes back in.
        top.at = slot.expiresAt;
        heap.push(top);
      }
    }
    // Deadlines moved earlier and deleted keys leave stale items behind; drop them before they outgrow the data.
    if (heap.size > 2 * map.size + 1024) {
      heap.compact((it) => map.get(it.key)?.armed === it);
    }
  }

  const timer = setInterval(sweep, sweepMs);
  timer.unref();

  const entryOf = (slot: Slot): DriverEntry => ({ value: copy(slot), expiresAt: slot.expiresAt });

  return {
    name: "memory",
    capabilities: {
      ttl: "emulated",
      ttlGranularityMs: 1,
      setIfAbsent: true,
      compareAndSet: true,
      orderedListing: true,
      settlesInTurn: true,
      maxKeyBytes: 64 * 1024,
    },
    get(key) {
      const slot = read(key);
      if (slot === undefined) return undefined;
      touch(key, slot);
      return entryOf(slot);
    },
    has(key) {
      return read(key) !== undefined;
    },
    set(key, value, expiresAt) {
      write(key, value, expiresAt);
    },
    delete(key) {
      const slot = read(key);
      if (slot === undefined) return false;
      remove(key, slot);
      return true;
    },
    setIfAbsent(key, value, expiresAt) {
      if (read(key) !== undefined) return false;
      write(key, value, expiresAt);
      return true;
    },
    getVersioned(key) {
      const slot = read(key);
      if (slot === undefined) return { entry: undefined, version: null };
      return { entry: entryOf(slot), version: String(slot.stamp) };
    },
    compareAndSet(key, expected: KvVersion, value, expiresAt) {
      const slot = read(key);
      const current = slot === undefined ? null : String(slot.stamp);
      if (current !== expected) return false;
      write(key, value, expiresAt);
      return String(stamp);
    },
    list({ prefix, cursor, limit, values }): DriverListPage {
      assertKeysetCursor(cursor);
      // Keyset pagination on the key itself: stable under concurrent writes, no offsets.
      const now = Date.now();
      const found: string[] = [];
      for (const [key, slot] of map) {
        if (!key.startsWith(prefix) || (cursor !== undefined && key <= cursor)) continue;
        if (slot.expiresAt !== undefined && slot.expiresAt <= now) continue;
        found.push(key);
      }
      found.sort();
      const pageKeys = found.length > limit ? found.slice(0, limit) : found;
      const items = pageKeys.map((key) => {
        const slot = map.get(key)!;
        return { key, value: values ? copy(slot) : undefined, expiresAt: slot.expiresAt };
      });
      return { items, cursor: found.length > limit ? pageKeys[pageKeys.length - 1] : undefined };
    },
    clear(prefix) {
      if (prefix === "") {
        map.clear();
        heap.clear();
        slabs.clear();
        bytes = 0;
        return;
      }
      for (const [key, slot] of map) if (key.startsWith(prefix)) remove(key, slot);
    },
    close() {
      clearInterval(timer);
      map.clear();
      heap.clear();
      slabs.clear();
      bytes = 0;
    },
  };
}
