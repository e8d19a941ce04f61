export type { RedisLike } from "./connection.js";
export { escapeGlob } from "./keys.js";
export { slotOf } from "./slots.js";
export type { RedisStoreOptions } from "./store.js";
export { createRedisStore, redisDriver } from "./store.js";
