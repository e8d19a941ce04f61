export { asBuffer, storedBytes } from "./buffers.js";
export type { BatchKind, Coalescer } from "./coalesce.js";
export { createCoalescer } from "./coalesce.js";
export type { Codec, JsonValue } from "./codec.js";
export { bytes, json, text } from "./codec.js";
export type { HeapItem } from "./deadline-heap.js";
export { createDeadlineHeap } from "./deadline-heap.js";
export { withDefaultTtl } from "./default-ttl.js";
export { delegateDriver } from "./delegate.js";
export type { EncryptionOptions } from "./encrypted.js";
export { encrypted } from "./encrypted.js";
export * from "./errors.js";
export {
  assertKeysetCursor,
  assertValidKey,
  assertValidPrefix,
  DEFAULT_MAX_KEY_BYTES,
  prefixUpperBound,
  utf8Length,
} from "./keys.js";
export type { MemoryStoreOptions } from "./memory.js";
export { createMemoryStore, memoryDriver } from "./memory.js";
export { readOnly } from "./read-only.js";
export { createStore, DEFAULT_MAX_VALUE_BYTES, resolveCapabilities } from "./store.js";
export type { DriverSweepOptions, Sweeper, SweeperOptions } from "./sweeper.js";
export { startDriverSweeper, startSweeper } from "./sweeper.js";
export type { TieredOptions } from "./tiered.js";
export { tiered } from "./tiered.js";
export { deadlineOf, isExpired, MAX_TTL_MS } from "./ttl.js";
export type { TypedStore } from "./typed.js";
export { withCodec } from "./typed.js";
export type * from "./types.js";
