import { FORWARDS_TO } from "./store.js";
import type { KvDriver, KvStore } from "./types.js";

/**
 * A driver that forwards every call to another store. Decorators spread it and
 * override the few methods they change, so each stays a few dozen lines.
 */
export function delegateDriver(inner: KvStore, name: string): KvDriver {
  const caps = inner.capabilities;
  const driver: KvDriver & { [FORWARDS_TO]: KvStore } = {
    [FORWARDS_TO]: inner,
    name,
    capabilities: caps,
    get: (key) => inner.getEntry(key),
    set: (key, value, expiresAt) => inner.set(key, value, { expiresAt }),
    delete: (key) => inner.delete(key),
    has: (key) => inner.has(key),
    getMany: async (keys) =>
      (await inner.getMany(keys)).map((value) => (value === undefined ? undefined : { value })),
    setMany: (writes) => inner.setMany(writes),
    deleteMany: (keys) => inner.deleteMany(keys),
    async list({ prefix, cursor, limit, values }) {
      if (values) {
        const page = await inner.listEntries({ prefix, cursor, limit });
        return { items: page.entries, cursor: page.cursor };
      }
      const page = await inner.listKeys({ prefix, cursor, limit });
      return { items: page.keys.map((key) => ({ key })), cursor: page.cursor };
    },
    clear: (prefix) => (prefix === "" ? inner.clear() : inner.withPrefix(prefix).clear()),
    setIfAbsent: caps.setIfAbsent
      ? (key, value, expiresAt) => inner.setIfAbsent(key, value, { expiresAt })
      : undefined,
    getVersioned: caps.compareAndSet
      ? async (key) => {
          const v = await inner.getVersioned(key);
          const entry = v.value === undefined ? undefined : { value: v.value, expiresAt: v.expiresAt };
          return { entry, version: v.version };
        }
      : undefined,
    compareAndSet: caps.compareAndSet
      ? (key, expected, value, expiresAt) => inner.compareAndSet(key, expected, value, { expiresAt })
      : undefined,
    close: () => inner.close(),
  };
  return driver;
}
