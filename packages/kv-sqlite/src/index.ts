export { toKvError } from "./errors.js";
export { SCHEMA_VERSION } from "./schema.js";
export type { SqliteStoreOptions } from "./store.js";
export { createSqliteStore } from "./store.js";
