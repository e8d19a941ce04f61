export type { RedisLike } from "./connection.js";
export type { RedisStoreOptions } from "./store.js";
export { createRedisStore } from "./store.js";
