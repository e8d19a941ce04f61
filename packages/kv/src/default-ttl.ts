import { delegateDriver } from "./delegate.js";
import { KvArgumentError } from "./errors.js";
import { createStore } from "./store.js";
import type { KvStore } from "./types.js";

/**
 * Every write that names no TTL gets `ttlMs`; an explicit `ttl`/`expiresAt` wins.
 *
 * @example
 * const cache = withDefaultTtl(store.withPrefix("cache:"), 60_000);
 * await cache.set("page:/", html); // expires in a minute
 */
export function withDefaultTtl(store: KvStore, ttlMs: number): KvStore {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0)
    throw new KvArgumentError(`default TTL must be a positive number of milliseconds, got ${String(ttlMs)}`);
  const base = delegateDriver(store, store.name);
  const at = (expiresAt: number | undefined) => expiresAt ?? Date.now() + Math.ceil(ttlMs);
  return createStore({
    ...base,
    set: (key, value, expiresAt) => store.set(key, value, { expiresAt: at(expiresAt) }),
    setMany: (writes) => store.setMany(writes.map((w) => ({ ...w, expiresAt: at(w.expiresAt) }))),
    setIfAbsent:
      base.setIfAbsent &&
      ((key, value, expiresAt) => store.setIfAbsent(key, value, { expiresAt: at(expiresAt) })),
    compareAndSet:
      base.compareAndSet &&
      ((key, expected, value, expiresAt) =>
        store.compareAndSet(key, expected, value, { expiresAt: at(expiresAt) })),
  });
}
