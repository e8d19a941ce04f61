export { toKvError } from "./errors.js";
export { SCHEMA_VERSION } from "./schema.js";
export type { PostgresConnection, PostgresStoreOptions } from "./store.js";
export { createPostgresStore, MAX_VALUE_BYTES } from "./store.js";
