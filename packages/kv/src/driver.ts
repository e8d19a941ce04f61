/**
 * `@kvsession/kv/driver`: what a driver author needs beyond the user API of `@kvsession/kv` —
 * `createStore(driver)`, key and cursor checks, deadlines, sweepers, batching and delegation.
 *
 * @example
 * import { createStore, type KvDriver } from "@kvsession/kv/driver";
 * export const createMyStore = () => createStore(myDriver());
 */
export { asBuffer, storedBytes } from "./buffers.js";
export type { BatchKind, Coalescer } from "./coalesce.js";
export { createCoalescer } from "./coalesce.js";
export type { HeapItem } from "./deadline-heap.js";
export { createDeadlineHeap } from "./deadline-heap.js";
export { delegateDriver } from "./delegate.js";
export {
  assertKeysetCursor,
  assertValidKey,
  assertValidPrefix,
  DEFAULT_MAX_KEY_BYTES,
  prefixUpperBound,
  utf8Length,
} from "./keys.js";
export { memoryDriver } from "./memory.js";
export { createStore, DEFAULT_MAX_VALUE_BYTES, resolveCapabilities } from "./store.js";
export type { DriverSweepOptions, Sweeper, SweeperOptions } from "./sweeper.js";
export { startDriverSweeper, startSweeper } from "./sweeper.js";
export { deadlineOf, isExpired, MAX_TTL_MS } from "./ttl.js";
export type { DriverEntry, DriverListOptions, DriverListPage, DriverWrite, KvDriver } from "./types.js";
