import type { KvStore } from "@kvsession/kv";

/** Every store method that reaches the engine; `withPrefix` and the descriptors do not. */
const IO = new Set([
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

export interface StoreCalls {
  /** Calls per method name, over the store and every view made from it. */
  readonly byMethod: Map<string, number>;
  total(): number;
  reset(): void;
}

/**
 * Wraps a real store so a scenario can prove what never reached it: every I/O method call is
 * counted, on the store and on every prefix view derived from it (the session layer works on views).
 */
export function countingStore(inner: KvStore): { store: KvStore; calls: StoreCalls } {
  const byMethod = new Map<string, number>();
  const calls: StoreCalls = {
    byMethod,
    total: () => [...byMethod.values()].reduce((a, b) => a + b, 0),
    reset: () => byMethod.clear(),
  };
  // The target is a blank object: the store itself is frozen, and a proxy of a frozen object must return its own methods.
  const wrap = (view: KvStore): KvStore =>
    new Proxy({} as KvStore, {
      get(_, prop) {
        if (prop === "withPrefix") return (prefix: string) => wrap(view.withPrefix(prefix));
        const value = Reflect.get(view, prop, view) as unknown;
        if (typeof value !== "function") return value;
        if (typeof prop !== "string" || !IO.has(prop)) return value.bind(view);
        return (...args: unknown[]) => {
          byMethod.set(prop, (byMethod.get(prop) ?? 0) + 1);
          return value.apply(view, args);
        };
      },
    });
  return { store: wrap(inner), calls };
}
