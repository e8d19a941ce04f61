import { createServer } from "node:http";
import { createRedisStore } from "@kvsession/kv-redis";
import { sessionApp } from "./session-app.js";

/**
 * The scenario app of the Cluster failover (`cluster-app.ts` starts it as a child process): the
 * test routes of `session-app.ts` on kvSession over a kv-redis Cluster store. Environment:
 * `CLUSTER_NODES` (comma-separated redis:// URLs, the seed nodes), `PORT`, `STORE_NAMESPACE`,
 * and `WAIT_REPLICAS` / `WAIT_TIMEOUT_MS` for the store's `wait` option.
 */
const env = process.env;
const replicas = Number(env.WAIT_REPLICAS ?? 0);
const store = createRedisStore({
  cluster: { rootNodes: (env.CLUSTER_NODES ?? "").split(",").map((url) => ({ url })) },
  namespace: env.STORE_NAMESPACE ?? "rel:",
  ...(replicas > 0 ? { wait: { replicas, timeoutMs: Number(env.WAIT_TIMEOUT_MS ?? 1000) } } : {}),
});
// A store failure answers 503 with the error's code (KV_CONNECTION, KV_TIMEOUT) as the body.
const { app } = sessionApp(store);
const server = createServer(app);
server.listen(Number(env.PORT), "127.0.0.1", () => console.log(`cluster app on ${env.PORT}`));
