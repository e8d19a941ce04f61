import type { KvStore } from "@kvsession/kv";

/** Every store method that reaches the engine; `withPrefix` and the descriptors do not. */
export const IO_METHODS: ReadonlySet<string> = new Set([
  "get",
  "getEntry",
  "has",
  "set",
  "delete",
  "getMany",
  "setMany",
  "deleteMany",
  "setIfAbsent",
  "getVersioned",
  "compareAndSet",
  "listKeys",
  "listEntries",
  "keys",
  "entries",
  "clear",
]);

/**
 * A view of a real store whose I/O methods go through `around` (on the store and on every prefix
 * view made from it, since the session layer works on views). Built on the public `KvStore` only,
 * so it fits any driver.
 */
export function wrapStore(inner: KvStore, around: (method: string, call: () => unknown) => unknown): KvStore {
  // The target is a blank object: the store itself is frozen, and a proxy of a frozen object must return its own methods.
  const wrap = (view: KvStore): KvStore =>
    new Proxy({} as KvStore, {
      get(_, prop) {
        if (prop === "withPrefix") return (prefix: string) => wrap(view.withPrefix(prefix));
        const value = Reflect.get(view, prop, view) as unknown;
        if (typeof value !== "function") return value;
        if (typeof prop !== "string" || !IO_METHODS.has(prop)) return value.bind(view);
        return (...args: unknown[]) => around(prop, () => value.apply(view, args));
      },
    });
  return wrap(inner);
}
