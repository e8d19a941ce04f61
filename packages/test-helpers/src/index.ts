export { type ChildServer, childServersForFile, spawnFixture, startChildServer } from "./child-server.js";
export { type Cleanup, cleanupsAfterEach, tempSqliteStore } from "./cleanups.js";
export { closedPortStore, freePort } from "./closed-port.js";
export { type CookieJar, cookieJar } from "./cookie-jar.js";
export { countingStore, type StoreCalls } from "./counting-store.js";
export { type PrivateServer, pgBinDir, startPrivateServer } from "./postgres-server.js";
export {
  type ClusterNodeView,
  type ClusterOptions,
  clusterNodes,
  masterOfSlot,
  ping as pingRedis,
  type RedisServer,
  replicaInSync,
  type SentinelGroup,
  type SentinelGroupOptions,
  type Shard,
  shardOfSlot,
  startCluster,
  startRedis,
  startSentinel,
  startSentinelGroup,
  type TestCluster,
} from "./redis-servers.js";
export { rmwProbe, rmwStores, storeWithFailingWrites } from "./rmw-probe.js";
export { sameCookieRace } from "./same-cookie-race.js";
export { SECRET } from "./secrets.js";
export { waitFor } from "./wait-for.js";
export { IO_METHODS, wrapStore } from "./wrap-store.js";
