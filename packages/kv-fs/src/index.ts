export type { FsStoreOptions } from "./store.js";
export { createFsStore } from "./store.js";
