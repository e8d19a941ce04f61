/**
 * The throwaway servers the driver fault tests already start on free loopback ports
 * (a redis-server of their own, a private PostgreSQL cluster), shared here rather than copied.
 */

export {
  type PrivateServer,
  pgBinDir,
  startPrivateServer,
} from "../../packages/kv-postgres/test/private-server.js";
export { freePort, type RedisServer, startRedis } from "../../packages/kv-redis/test/servers.js";
