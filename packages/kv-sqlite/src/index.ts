export type { SqliteStoreOptions } from "./store.js";
export { createSqliteStore } from "./store.js";
