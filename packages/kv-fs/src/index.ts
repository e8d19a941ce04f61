export { decodeName, encodeKey } from "./encoding.js";
export { toKvError } from "./errors.js";
export type { FsStoreOptions } from "./store.js";
export { createFsStore } from "./store.js";
