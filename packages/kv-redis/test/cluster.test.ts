import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { runStoreConformance } from "@kvsession/kv-test-suite";
import { type RedisServer, startCluster } from "@kvsession/test-helpers";
import { createCluster as createCluster6 } from "redis6";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisStore } from "../src/index.js";
import { slotOf } from "../src/slots.js";

const run = promisify(execFile);
const enc = (s: string) => new TextEncoder().encode(s);

// A real 3-master Redis Cluster of this file's own, from the redis-server binary, on loopback ports.
let cluster: { nodes: RedisServer[]; stop(): Promise<void> } | undefined;
beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

const open = (namespace = "kvc:") => {
  if (!cluster) throw new Error("cluster not started");
  return createRedisStore({ cluster: { rootNodes: [{ url: cluster.nodes[0]?.url }] }, namespace });
};

runStoreConformance("kv-redis (3-master cluster)", () => open());

// The same through an app's own redis@6 cluster client (node-redis v6, under the npm alias "redis6").
const openCluster6 = () =>
  createCluster6({ rootNodes: [{ url: cluster?.nodes[0]?.url }], defaults: { disableOfflineQueue: true } });
let cluster6: ReturnType<typeof openCluster6> | undefined;
afterAll(async () => {
  cluster6?.destroy();
});
runStoreConformance("kv-redis (3-master cluster, redis@6 client)", async () => {
  if (cluster6 === undefined) {
    const c = openCluster6();
    c.on("error", () => {});
    await c.connect();
    cluster6 = c;
  }
  return createRedisStore({ client: cluster6, namespace: "kvc6:" });
});

describe("kv-redis on a cluster", () => {
  it("spreads keys over all three masters and lists them from every one", async () => {
    const store = open("spread:");
    try {
      await store.clear();
      const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
      await store.setMany(keys.map((key) => ({ key, value: enc(key) })));
      // Each master holds some of them, asked directly, not through the driver.
      const counts: number[] = [];
      for (const n of cluster?.nodes ?? []) {
        const { stdout } = await run("redis-cli", ["-p", String(n.port), "--scan", "--pattern", "spread:*"]);
        counts.push(stdout.split("\n").filter(Boolean).length);
      }
      expect(counts).toHaveLength(3);
      for (const c of counts) expect(c).toBeGreaterThan(0);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(300);
      const listed = new Set<string>();
      for await (const k of store.keys("", 37)) listed.add(k);
      expect([...listed].sort()).toEqual([...keys].sort());
      expect((await store.getMany(keys)).map((v) => v && new TextDecoder().decode(v))).toEqual(keys);
    } finally {
      await store.clear();
      await store.close();
    }
  });

  it("keeps a value and its version record in one slot, whatever hash tags the key holds", async () => {
    const store = open("tags:");
    try {
      for (const key of ["{a}b", "x{}y", "}{", "{", "{é}", "plain"]) {
        await store.set(key, enc("1"));
        const { version } = await store.getVersioned(key);
        expect(await store.compareAndSet(key, version, enc("2")), key).toEqual(expect.any(String));
        expect(slotOf(`tags:${key}`)).toBeGreaterThanOrEqual(0);
      }
    } finally {
      await store.clear();
      await store.close();
    }
  });
});
