import { delegateDriver } from "./delegate.js";
import { KvReadOnlyError } from "./errors.js";
import { createStore } from "./store.js";
import type { KvStore } from "./types.js";

/**
 * A view that reads through to `store` and refuses every write with
 * `KvReadOnlyError`. Closing the view does not close the store underneath.
 *
 * @example
 * const reports = readOnly(store.withPrefix("report:"));
 * await reports.get("2026-11"); // fine
 * await reports.set("x", bytes); // throws KvReadOnlyError
 */
export function readOnly(store: KvStore): KvStore {
  const refuse = (op: string) => () => {
    throw new KvReadOnlyError(op);
  };
  return createStore({
    ...delegateDriver(store, `${store.name} (read-only)`),
    set: refuse("set"),
    setMany: refuse("setMany"),
    delete: refuse("delete"),
    deleteMany: refuse("deleteMany"),
    clear: refuse("clear"),
    setIfAbsent: refuse("setIfAbsent"),
    compareAndSet: refuse("compareAndSet"),
    close: () => undefined,
  });
}
