import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { wrapStore } from "./wrap-store.js";

export interface StoreCalls {
  /** Calls per method name, over the store and every view made from it. */
  readonly byMethod: Map<string, number>;
  total(): number;
  reset(): void;
}

/**
 * A real store whose I/O calls are counted (instrumentation, not a mock), so a test can prove
 * what never reached the store.
 *
 * @example
 * const { store, calls } = countingStore();
 * // …requests…
 * expect(calls.total()).toBe(0);
 */
export function countingStore(inner: KvStore = createMemoryStore()): { store: KvStore; calls: StoreCalls } {
  const byMethod = new Map<string, number>();
  const calls: StoreCalls = {
    byMethod,
    total: () => [...byMethod.values()].reduce((a, b) => a + b, 0),
    reset: () => byMethod.clear(),
  };
  const store = wrapStore(inner, (method, call) => {
    byMethod.set(method, (byMethod.get(method) ?? 0) + 1);
    return call();
  });
  return { store, calls };
}
