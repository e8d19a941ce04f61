import { delegateDriver } from "./delegate.js";
import { KvArgumentError } from "./errors.js";
import { createStore } from "./store.js";
import type { KvEntry, KvStore } from "./types.js";

export interface TieredOptions {
  /** Longest time an entry stays in the fast tier, in ms. Bounds staleness from writers in other processes. Default 5000. */
  fastTtlMs?: number;
}

/**
 * The fast tier's own deadline is capped, so it keeps each value behind the slow tier's deadline
 * for that value: a hit then reports the deadline the slow tier holds, not the cap.
 */
const HEADER = 8;
const NO_DEADLINE = -1;

function toFast(entry: KvEntry): Uint8Array {
  const out = new Uint8Array(HEADER + entry.value.length);
  new DataView(out.buffer).setFloat64(0, entry.expiresAt ?? NO_DEADLINE);
  out.set(entry.value, HEADER);
  return out;
}

function fromFast(hit: KvEntry): KvEntry {
  const deadline = new DataView(hit.value.buffer, hit.value.byteOffset, HEADER).getFloat64(0);
  return {
    key: hit.key,
    value: hit.value.subarray(HEADER),
    expiresAt: deadline === NO_DEADLINE ? undefined : deadline,
  };
}

/**
 * A fast store (usually memory) in front of a slow one (the source of truth).
 * Reads fill the fast tier; every write, delete and CAS goes to the slow tier
 * first and then invalidates the fast one. A read that raced a write through
 * this tier does not fill (a generation check), so this process never caches a
 * value older than its own last write. Writers in other processes are seen
 * after at most `fastTtlMs`.
 *
 * @example
 * const store = tiered(createMemoryStore({ maxEntries: 10_000 }), createRedisStore({ url }));
 */
export function tiered(fast: KvStore, slow: KvStore, options: TieredOptions = {}): KvStore {
  const fastTtl = options.fastTtlMs ?? 5000;
  if (!(fastTtl > 0)) throw new KvArgumentError(`fastTtlMs must be positive, got ${String(fastTtl)}`);
  let generation = 0;
  const base = delegateDriver(slow, `${fast.name}+${slow.name}`);
  const invalidate = async <T>(result: T, keys: readonly string[]): Promise<T> => {
    generation++;
    if (keys.length === 1) await fast.delete(keys[0]!);
    else if (keys.length > 0) await fast.deleteMany(keys);
    return result;
  };
  return createStore({
    ...base,
    async get(key) {
      const hit = await fast.getEntry(key);
      if (hit) return fromFast(hit);
      const gen = generation;
      const entry = await slow.getEntry(key);
      if (entry && gen === generation) {
        const cap = Date.now() + fastTtl;
        await fast.set(key, toFast(entry), { expiresAt: Math.min(entry.expiresAt ?? cap, cap) });
      }
      return entry;
    },
    has: async (key) => (await fast.has(key)) || slow.has(key),
    set: async (key, value, expiresAt) => invalidate(await slow.set(key, value, { expiresAt }), [key]),
    setMany: async (writes) =>
      invalidate(
        await slow.setMany(writes),
        writes.map((w) => w.key),
      ),
    delete: async (key) => invalidate(await slow.delete(key), [key]),
    deleteMany: async (keys) => invalidate(await slow.deleteMany(keys), keys),
    setIfAbsent:
      base.setIfAbsent &&
      (async (key, value, expiresAt) => invalidate(await slow.setIfAbsent(key, value, { expiresAt }), [key])),
    compareAndSet:
      base.compareAndSet &&
      (async (key, expected, value, expiresAt) =>
        invalidate(await slow.compareAndSet(key, expected, value, { expiresAt }), [key])),
    async clear(prefix) {
      generation++;
      await (prefix === "" ? slow.clear() : slow.withPrefix(prefix).clear());
      await (prefix === "" ? fast.clear() : fast.withPrefix(prefix).clear());
    },
    async close() {
      await Promise.all([fast.close(), slow.close()]);
    },
  });
}
