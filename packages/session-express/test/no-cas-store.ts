import type { KvStore } from "@kvsession/kv";
import { createStore, delegateDriver } from "@kvsession/kv/driver";

/** A real store whose driver declares no compare-and-set (as a Keyv store does). */
export function withoutCompareAndSet(inner: KvStore): KvStore {
  const driver = delegateDriver(inner, "no-cas");
  return createStore({
    ...driver,
    capabilities: { ...driver.capabilities, compareAndSet: false },
    getVersioned: undefined,
    compareAndSet: undefined,
  });
}
