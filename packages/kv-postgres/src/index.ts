export type { PostgresConnection, PostgresStoreOptions } from "./store.js";
export { createPostgresStore, MAX_VALUE_BYTES } from "./store.js";
