import { runStoreConformance } from "@kvsession/kv-test-suite";
import { type RedisServer, startRedis, startSentinel } from "@kvsession/test-helpers";
import { afterAll, beforeAll } from "vitest";
import { createRedisStore } from "../src/index.js";

// A master and a Sentinel of this file's own; the store finds the master through Sentinel.
let master: RedisServer | undefined;
let sentinel: { port: number; stop(): Promise<void> } | undefined;
beforeAll(async () => {
  master = await startRedis();
  sentinel = await startSentinel(master);
}, 30_000);
afterAll(async () => {
  await sentinel?.stop();
  await master?.stop();
});

runStoreConformance("kv-redis (sentinel)", () =>
  createRedisStore({
    sentinel: { name: "kvmaster", sentinelRootNodes: [{ host: "127.0.0.1", port: sentinel?.port ?? 0 }] },
    namespace: "kvs:",
  }),
);
