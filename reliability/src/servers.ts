/**
 * The throwaway servers the driver fault tests already start on free loopback ports
 * (a redis-server of their own, a Redis Cluster with replicas, a master with a replica and
 * Sentinels, a private PostgreSQL cluster),
 * shared here rather than copied.
 */

export {
  type PrivateServer,
  pgBinDir,
  startPrivateServer,
} from "../../packages/kv-postgres/test/private-server.js";
export {
  clusterNodes,
  freePort,
  masterOfSlot,
  type RedisServer,
  replicaInSync,
  type SentinelGroup,
  startCluster,
  startRedis,
  startSentinelGroup,
  type TestCluster,
} from "../../packages/kv-redis/test/servers.js";
