import { KvConnectionError, KvTimeoutError } from "@kvsession/kv";
import { type RedisServer, startCluster } from "@kvsession/test-helpers";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRedisStore } from "../src/index.js";
import { slotOf } from "../src/slots.js";

// A 3-master Cluster of this file's own; one master is killed and restarted mid-run.
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let cluster: { nodes: RedisServer[]; stop(): Promise<void> } | undefined;
beforeAll(async () => {
  // Live masters keep answering however long the test takes after the kill, not only until the
  // cluster marks the dead one failed.
  cluster = await startCluster({ args: ["--cluster-require-full-coverage", "no"] });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

it("fails typed for a dead master's keys, and works again once it is back", async () => {
  const nodes = cluster?.nodes ?? [];
  const store = createRedisStore({
    cluster: { rootNodes: nodes.map((n) => ({ url: n.url })) },
    namespace: "cf:",
    // The first connection (slot discovery, three nodes) must fit in it even on a busy machine.
    connectWaitMs: 1000,
    commandTimeoutMs: 3000,
  });
  try {
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    await store.setMany(keys.map((key) => ({ key, value: enc(key) })));
    // Slots 0..5460 belong to the first master `redis-cli --cluster create` was given.
    const victim = keys.find((k) => slotOf(`cf:${k}`) <= 5460) as string;
    await nodes[0]?.kill();
    const err = await store.get(victim).catch((e: unknown) => e);
    expect(err instanceof KvConnectionError || err instanceof KvTimeoutError, String(err)).toBe(true);
    // Operations issued together share commands per slot: those on the live masters still answer.
    const onDead = (k: string) => slotOf(`cf:${k}`) <= 5460;
    const [gets, versioned, writes] = await Promise.all([
      Promise.allSettled(keys.map((k) => store.get(k))),
      Promise.allSettled(keys.map((k) => store.getVersioned(k))),
      Promise.allSettled(keys.map((k) => store.set(k, enc(`${k}!`)))),
    ]);
    keys.forEach((k, i) => {
      for (const r of [gets[i], versioned[i], writes[i]]) {
        if (onDead(k)) expect((r as PromiseRejectedResult).reason, k).toBeInstanceOf(KvConnectionError);
        else expect(r?.status, `${k}: ${String((r as PromiseRejectedResult).reason)}`).toBe("fulfilled");
      }
      if (!onDead(k)) expect(dec((gets[i] as PromiseFulfilledResult<Uint8Array | undefined>).value)).toBe(k);
    });
    await nodes[0]?.start();
    let value: string | undefined;
    for (let i = 0; i < 200 && value === undefined; i++) {
      value = await store.get(victim).then(dec, () => undefined);
      if (value === undefined) {
        // The node restarted empty (no persistence): write again until the cluster takes writes.
        await store.set(victim, enc("again")).catch(() => {});
        await sleep(50);
      }
    }
    expect(value).toBe("again");
  } finally {
    await store.close();
  }
}, 60_000);
