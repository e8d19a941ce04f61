export type { Codec, JsonValue } from "./codec.js";
export { bytes, json, text } from "./codec.js";
export { withDefaultTtl } from "./default-ttl.js";
export type { EncryptionOptions } from "./encrypted.js";
export { encrypted } from "./encrypted.js";
export * from "./errors.js";
export type { MemoryStoreOptions } from "./memory.js";
export { createMemoryStore } from "./memory.js";
export { readOnly } from "./read-only.js";
export type { TieredOptions } from "./tiered.js";
export { tiered } from "./tiered.js";
export type { TypedStore } from "./typed.js";
export { withCodec } from "./typed.js";
export type {
  Awaitable,
  BatchWrite,
  EntryPage,
  KeyPage,
  KvCapabilities,
  KvEntry,
  KvStore,
  KvVersion,
  ListOptions,
  SetOptions,
  Versioned,
} from "./types.js";
