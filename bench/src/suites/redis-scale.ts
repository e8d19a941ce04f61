import { spawnSync } from "node:child_process";
import { createRedisStore } from "@kvsession/kv-redis";
import { type RedisServer, startRedis } from "@kvsession/test-helpers";
import { createClient, RESP_TYPES } from "redis";
import { preloadMany, SCALES, scaleCases, scaleLabel, timed } from "../scale.js";
import type { BenchSuite } from "../types.js";

/** Ours and the raw client share one key layout, so both run over the same stored set. */
const NS = "s:";
/** The harness hands each server's URL to the measurement processes through the environment. */
const urlVar = (count: number) => `KVSESSION_BENCH_REDIS_SCALE_${count}`;
const urlOf = (count: number) => {
  const url = process.env[urlVar(count)];
  if (!url) throw new Error(`${urlVar(count)} is unset: run this suite through the harness (pnpm bench)`);
  return url;
};

const servers: RedisServer[] = [];
const preloads: string[] = [];

export default {
  title: "Scale on Redis: createRedisStore and raw node-redis v5 with 10k vs 1M keys stored",
  inFlight: [1, 64],
  ops: 50_000,
  async prepare() {
    for (const count of SCALES) {
      // A private server per size: the shared one must not hold a million bench keys, and each
      // server then holds exactly the data set being measured.
      const server = await startRedis();
      servers.push(server);
      spawnSync("taskset", ["-cp", "1", String(server.process.pid)]); // with the other servers, off the load generator's core
      process.env[urlVar(count)] = server.url;
      const store = createRedisStore({ url: server.url, namespace: NS });
      const seconds = await timed(() => preloadMany(store, count, 10_000));
      await store.close();
      preloads.push(`${scaleLabel(count)} in ${seconds.toFixed(1)} s`);
      console.log(`pre-loaded ${preloads.at(-1)}`);
    }
  },
  async finish() {
    await Promise.all(servers.map((s) => s.stop()));
  },
  get notes() {
    return [
      "Per-operation cost with 10,000 vs 1,000,000 keys stored: each size in a private `redis-server` of its own (pinned to core 1, no persistence), started and pre-loaded once per run through the store's `setMany` (batches of 10,000), and stopped at the end.",
      "Gets and sets of 100-byte values, keys visited in a scattered order over the whole stored set; both sizes run interleaved within each repeat.",
      `Our store and the raw client (bare node-redis v5 \`GET\` / \`SET\`, Buffer replies) read and write the same keys, so the raw rows show the engine's own scaling beside ours. Pre-loads: ${preloads.join(", ") || "none recorded"}.`,
      "The 1M / 10k column is the flatness check (reported, not asserted): 1.00x means the same per-operation cost at 1M keys as at 10k.",
    ].join(" ");
  },
  cases: scaleCases([
    {
      name: "createRedisStore",
      role: "ours",
      async open(count) {
        const store = createRedisStore({ url: urlOf(count), namespace: NS });
        return { api: store, close: () => store.close() };
      },
    },
    {
      name: "node-redis v5 GET/SET",
      role: "limit",
      async open(count) {
        const client = createClient({ url: urlOf(count) }).withTypeMapping({
          [RESP_TYPES.BLOB_STRING]: Buffer,
        });
        client.on("error", () => {});
        await client.connect();
        return {
          api: { get: (k) => client.get(NS + k), set: (k, v) => client.set(NS + k, v as Buffer) },
          close: () => client.close(),
        };
      },
    },
  ]),
} satisfies BenchSuite;
