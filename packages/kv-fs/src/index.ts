export { decodeName, encodeKey } from "./encoding.js";
export { toKvError } from "./errors.js";
export type { FsDriver, FsStoreOptions } from "./store.js";
export { createFsStore, fsDriver } from "./store.js";
