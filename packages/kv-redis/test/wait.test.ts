import { KvConnectionError, KvTimeoutError } from "@kvsession/kv";
import { runStoreConformance } from "@kvsession/kv-test-suite";
import { type RedisServer, replicaInSync, startRedis } from "@kvsession/test-helpers";
import { createClient } from "redis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRedisStore } from "../src/index.js";

// The `wait` option on a master and a replica of this file's own: a write is acknowledged only once
// the replica has it, and the store says so, typed, when it cannot be.
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let master: RedisServer;
let replica: RedisServer;
beforeAll(async () => {
  master = await startRedis();
  replica = await startRedis(["--replicaof", "127.0.0.1", String(master.port)]);
  await inSync();
}, 30_000);
afterAll(async () => {
  await replica?.stop();
  await master?.stop();
});

async function inSync(): Promise<void> {
  for (let i = 0; i < 200 && !(await replicaInSync(replica.port)); i++) await sleep(50);
}

/** Reads `key` on the replica directly, not through the store. */
async function onReplica(key: string): Promise<string | null> {
  const c = createClient({ url: replica.url });
  await c.connect();
  try {
    return await c.get(key);
  } finally {
    c.destroy();
  }
}

// Every operation through the write-then-WAIT path keeps the whole contract.
// Timeouts are long wherever the replica is up, so a busy machine's stall cannot fail a write that must succeed.
runStoreConformance("kv-redis (wait for a replica)", () =>
  createRedisStore({ url: master.url, namespace: "wcf:", wait: { replicas: 1, timeoutMs: 5_000 } }),
);

it("acknowledges writes only once the replica has them, with one WAIT per batch", async () => {
  const store = createRedisStore({
    url: master.url,
    namespace: "w1:",
    wait: { replicas: 1, timeoutMs: 5_000 },
  });
  const admin = createClient({ url: master.url });
  await admin.connect();
  try {
    await store.set("one", enc("1"));
    expect(await onReplica("w1:one")).toBe("1");
    await admin.configResetStat();
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => store.set(k, enc(k))));
    for (const k of keys) expect(await onReplica(`w1:${k}`)).toBe(k);
    // Twenty writes issued together: a lone first one, then transactions, sharing WAITs per turn.
    const waits = Number(/cmdstat_wait:calls=(\d+)/.exec(await admin.info("commandstats"))?.[1]);
    expect(waits).toBeGreaterThanOrEqual(1);
    expect(waits).toBeLessThanOrEqual(2);

    const { version } = await store.getVersioned("one");
    expect(await store.compareAndSet("one", version, enc("2"))).toEqual(expect.any(String));
    expect(await onReplica("w1:one")).toBe("2");
    expect(await store.setIfAbsent("fresh", enc("f"))).toBe(true);
    expect(await onReplica("w1:fresh")).toBe("f");
    expect(await store.delete("fresh")).toBe(true);
    expect(await onReplica("w1:fresh")).toBe(null);
  } finally {
    admin.destroy();
    await store.clear();
    await store.close();
  }
});

it("fails a write the replica did not confirm (KvTimeoutError), then refuses writes unsent until a replica is back", async () => {
  const store = createRedisStore({
    url: master.url,
    namespace: "w2:",
    wait: { replicas: 1, timeoutMs: 2_000 },
  });
  try {
    await store.set("k", enc("before"));
    await replica.kill();
    // Applied on the master, not confirmed: the caller is told the write may not survive a failover.
    const unconfirmed = await store.set("k", enc("unconfirmed")).catch((e: unknown) => e);
    expect(unconfirmed).toBeInstanceOf(KvTimeoutError);
    expect((unconfirmed as Error).message).toMatch(/0 of 1 replicas/);
    // Now known short of replicas: the next write is not sent at all, and reads are not held up.
    const refused = await store.set("k", enc("refused")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KvConnectionError);
    expect((refused as Error).message).toMatch(/not sent/);
    expect(dec(await store.get("k"))).toBe("unconfirmed");

    await replica.start();
    await inSync();
    let done = false;
    for (let i = 0; i < 100 && !done; i++) {
      done = await store.set("k", enc("after")).then(
        () => true,
        () => false,
      );
      if (!done) await sleep(50);
    }
    expect(done).toBe(true);
    expect(await onReplica("w2:k")).toBe("after");
  } finally {
    await store.clear();
    await store.close();
  }
});

it("rejects a wait it cannot honour", () => {
  expect(() => createRedisStore({ url: master.url, wait: { replicas: 1, timeoutMs: 0 } })).toThrow(
    /timeoutMs/,
  );
  expect(() => createRedisStore({ url: master.url, wait: { replicas: -1 } })).toThrow(/replicas/);
});
