import { createServer } from "node:http";
import { createRedisStore } from "@kvsession/kv-redis";
import { sessionApp } from "./session-app.js";

/**
 * The scenario app of the Redis failovers (`cluster-app.ts` starts it as a child process): the
 * test routes of `session-app.ts` on kvSession over a kv-redis store. Environment:
 * `CLUSTER_NODES` (comma-separated redis:// URLs, the seed nodes of a Cluster) or `SENTINELS`
 * (comma-separated host:port) with `SENTINEL_NAME`; `PORT`, `STORE_NAMESPACE`, and
 * `WAIT_REPLICAS` / `WAIT_TIMEOUT_MS` for the store's `wait` option.
 */
const env = process.env;
const replicas = Number(env.WAIT_REPLICAS ?? 0);
const hostPort = (s: string) => {
  const [host, port] = s.split(":");
  return { host: host as string, port: Number(port) };
};
const store = createRedisStore({
  ...(env.SENTINELS
    ? {
        sentinel: {
          name: env.SENTINEL_NAME ?? "kvmaster",
          sentinelRootNodes: env.SENTINELS.split(",").map(hostPort),
        },
      }
    : { cluster: { rootNodes: (env.CLUSTER_NODES ?? "").split(",").map((url) => ({ url })) } }),
  namespace: env.STORE_NAMESPACE ?? "rel:",
  ...(replicas > 0 ? { wait: { replicas, timeoutMs: Number(env.WAIT_TIMEOUT_MS ?? 1000) } } : {}),
});
// A store failure answers 503 with the error's code (KV_CONNECTION, KV_TIMEOUT) as the body.
const { app } = sessionApp(store);
const server = createServer(app);
server.listen(Number(env.PORT), "127.0.0.1", () => console.log(`kvSession app on ${env.PORT}`));
