import { KvCorruptError, type KvStore } from "@kvsession/kv";
import { type RedisServer, startRedis } from "@kvsession/test-helpers";
import { createClient } from "redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createRedisStore } from "../src/index.js";
import { createKeySpace } from "../src/keys.js";

// Batching of operations issued in one turn, on a redis-server of this file's own so its command counts are exact.
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
/** What is left of a one-minute TTL set after `t0`, however long the machine took since (less a rounding ms). */
const left60s = (t0: number) => 60_000 - (Date.now() - t0) - 1;

let server: RedisServer;
let store: KvStore;
let admin: ReturnType<typeof createClient>;

/** Calls of each command the server has run since the last reset (INFO commandstats). */
async function commandCalls(): Promise<Record<string, number>> {
  const info = await admin.info("commandstats");
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

beforeAll(async () => {
  server = await startRedis();
  admin = createClient({ url: server.url });
  await admin.connect();
  store = createRedisStore({ url: server.url, namespace: "co:" });
});
afterAll(async () => {
  await store?.close();
  await admin?.close();
  await server?.stop();
});
beforeEach(async () => {
  await admin.flushAll();
});

describe("operations issued in one turn share a command", () => {
  it("64 gets: the first goes out alone at once, the other 63 as two MGETs (batches of 32)", async () => {
    await store.setMany(Array.from({ length: 64 }, (_, i) => ({ key: `k${i}`, value: enc(`v${i}`) })));
    await admin.configResetStat();
    const got = await Promise.all(Array.from({ length: 64 }, (_, i) => store.get(`k${i}`)));
    expect(got.map(dec)).toEqual(Array.from({ length: 64 }, (_, i) => `v${i}`));
    const calls = await commandCalls();
    expect(calls.get).toBe(1);
    expect(calls.mget).toBe(2); // 32 + 31
  });

  it("64 sets: one alone, then two MULTI/EXEC transactions; a lone set is its own command", async () => {
    await admin.configResetStat();
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        store.set(`k${i}`, enc(`v${i}`), { ttl: i % 2 ? 60_000 : undefined }),
      ),
    );
    const calls = await commandCalls();
    // 1 + 32 + 31. The lone one's script runs a SET and a DEL (counted by the server too);
    // each transaction a SET PX per write with expiry (32 in all), an MSET per run without, one DEL.
    expect([calls.evalsha, calls.exec, calls.del, calls.set]).toEqual([1, 2, 3, 33]);
    expect(calls.mset).toBe(31);
    for (let i = 0; i < 64; i++) {
      expect(await admin.get(`co:k${i}`)).toBe(`v${i}`);
      if (i % 2) expect(await admin.pTTL(`co:k${i}`)).toBeGreaterThanOrEqual(left60s(t0));
      else expect(await admin.pTTL(`co:k${i}`)).toBe(-1);
    }
    await admin.configResetStat();
    await store.set("alone", enc("x"));
    expect((await commandCalls()).evalsha).toBe(1);
  });

  it("64 sets of 10 KiB: one alone, then transactions of at most 16 (160 KiB), sent together", async () => {
    const big = Buffer.alloc(10 * 1024, 1);
    await admin.configResetStat();
    await Promise.all(Array.from({ length: 64 }, (_, i) => store.set(`k${i}`, big)));
    const calls = await commandCalls();
    // 1 + 16 + 16 + 16 + 15: a batch of 32 would be one 320 KiB command the server cannot start on early.
    expect([calls.evalsha, calls.exec, calls.mset]).toEqual([1, 4, 4]);
    expect(Buffer.from((await store.get("k63"))!).equals(big)).toBe(true);
  });

  it("a batch of sets drops the version records of its keys: compare-and-sets holding the old versions fail", async () => {
    const keys = Array.from({ length: 17 }, (_, i) => `k${i}`);
    await store.setMany(keys.map((key) => ({ key, value: enc("old") })));
    const held = await Promise.all(keys.map((k) => store.getVersioned(k)));
    expect(held.every((r) => typeof r.version === "string")).toBe(true);
    await admin.configResetStat();
    await Promise.all(keys.map((k, i) => store.set(k, enc(`new${i}`), { ttl: i % 3 ? 60_000 : undefined })));
    expect((await commandCalls()).exec).toBe(1); // the first alone, the other 16 in one transaction
    const swapped = await Promise.all(
      keys.map((k, i) => store.compareAndSet(k, held[i]!.version, enc("stale"))),
    );
    expect(swapped.filter(Boolean)).toEqual([]);
    expect((await store.getMany(keys)).map(dec)).toEqual(keys.map((_, i) => `new${i}`));
  });

  it("writes to one key in one batch, with and without expiry, keep issue order and the last one's TTL", async () => {
    const t0 = Date.now();
    await Promise.all([
      store.set("other", enc("o")), // goes out alone: the rest share one transaction
      store.set("a", enc("1")),
      store.set("a", enc("2"), { ttl: 60_000 }),
      store.set("a", enc("3")),
      store.set("b", enc("1")),
      store.set("b", enc("2"), { ttl: 60_000 }),
    ]);
    expect([await admin.get("co:a"), await admin.pTTL("co:a")]).toEqual(["3", -1]);
    expect(await admin.get("co:b")).toBe("2");
    expect(await admin.pTTL("co:b")).toBeGreaterThanOrEqual(left60s(t0));
  });

  it("batched compare-and-set: of 17 writers holding one version exactly one wins, in two commands", async () => {
    await store.set("c", enc("start"));
    const { version } = await store.getVersioned("c");
    await admin.configResetStat();
    const results = await Promise.all(
      Array.from({ length: 17 }, (_, i) => store.compareAndSet("c", version, enc(`w${i}`))),
    );
    expect((await commandCalls()).evalsha).toBe(2); // the first alone, the other 16 in one batch
    expect(results.filter(Boolean).length).toBe(1);
    const winner = results.findIndex((r) => r !== false);
    expect(dec(await store.get("c"))).toBe(`w${winner}`);
    expect(results[winner]).toBe((await store.getVersioned("c")).version);
  });

  it("batched versioned reads hand each key its own version, stable until the key changes", async () => {
    await store.setMany(Array.from({ length: 8 }, (_, i) => ({ key: `k${i}`, value: enc(`v${i}`) })));
    // Plain writes leave no version record: the first reads pin one each, through the script.
    const first = await Promise.all(Array.from({ length: 8 }, (_, i) => store.getVersioned(`k${i}`)));
    await admin.configResetStat();
    const again = await Promise.all(Array.from({ length: 9 }, (_, i) => store.getVersioned(`k${i}`)));
    expect(new Set(first.map((r) => r.version)).size).toBe(8);
    expect(again.slice(0, 8).map((r) => r.version)).toEqual(first.map((r) => r.version));
    expect(again[8]).toMatchObject({ value: undefined, version: null });
    expect(first.map((r) => dec(r.value))).toEqual(Array.from({ length: 8 }, (_, i) => `v${i}`));
    // Versioned keys read with MGET alone (the first read alone, the other eight in one), no script.
    const calls = await commandCalls();
    expect([calls.mget, calls.evalsha ?? 0]).toEqual([2, 0]);
  });
});

describe("versions: false", () => {
  it("64 sets: one SET alone, then two transactions of MSETs and SET PXs; no script, no DEL of version records", async () => {
    const plain = createRedisStore({ url: server.url, namespace: "nv:", versions: false });
    try {
      await admin.configResetStat();
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: 64 }, (_, i) =>
          plain.set(`k${i}`, enc(`v${i}`), { ttl: i % 2 ? 60_000 : undefined }),
        ),
      );
      const calls = await commandCalls();
      // k0 alone (no TTL); k1…k63 in two transactions (32 + 31): a SET PX per odd key, an MSET per even one between.
      expect([calls.set, calls.mset, calls.exec, calls.evalsha ?? 0, calls.del ?? 0]).toEqual([
        33, 31, 2, 0, 0,
      ]);
      for (let i = 0; i < 64; i++) expect(await admin.get(`nv:k${i}`)).toBe(`v${i}`);
      expect(await admin.pTTL("nv:k63")).toBeGreaterThanOrEqual(left60s(t0));
      expect(await admin.pTTL("nv:k62")).toBe(-1);
    } finally {
      await plain.close();
    }
  });

  it("a set goes out after the gets queued before it: they read the old value, a later get the new", async () => {
    const plain = createRedisStore({ url: server.url, namespace: "nv:", versions: false });
    try {
      await plain.set("k", enc("old"));
      const [first, second, , after] = await Promise.all([
        plain.get("other"), // goes out alone at once
        plain.get("k"), // queued behind it
        plain.set("k", enc("new")),
        plain.get("k"),
      ]);
      expect([first, dec(second), dec(after)]).toEqual([undefined, "old", "new"]);
    } finally {
      await plain.close();
    }
  });
});

describe("issue order is kept", () => {
  it("set then delete in one turn leaves nothing; delete then set leaves the value", async () => {
    const a = store.set("k", enc("a"));
    const d = store.delete("k");
    await Promise.all([a, d]);
    expect(await store.get("k")).toBeUndefined();
    const d2 = store.delete("k2");
    const s2 = store.set("k2", enc("b"));
    await Promise.all([d2, s2]);
    expect(dec(await store.get("k2"))).toBe("b");
  });

  it("a get issued after a set in one turn reads it, even with another get queued before the set", async () => {
    await store.set("k", enc("old"));
    const [, , after] = await Promise.all([store.get("other"), store.set("k", enc("new")), store.get("k")]);
    expect(dec(after)).toBe("new");
  });

  it("writes to one key in one turn land in issue order", async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.set("k", enc(`v${i}`))));
    expect(dec(await store.get("k"))).toBe("v49");
  });
});

describe("one bad key never fails its neighbours", () => {
  it("a version record holding another type fails its compare-and-set alone, typed; the rest of the batch succeeds", async () => {
    for (const k of ["good1", "bad", "good2"]) await store.set(k, enc(k));
    const versions = await Promise.all(["good1", "bad", "good2"].map((k) => store.getVersioned(k)));
    const badVersion = createKeySpace("co:").version("bad");
    await admin.del(badVersion);
    await admin.hSet(badVersion, "f", "v"); // a hash where a version is expected
    const results = await Promise.allSettled(
      ["good1", "bad", "good2"].map((k, i) =>
        store.compareAndSet(k, versions[i]?.version ?? null, enc(`${k}!`)),
      ),
    );
    expect(results[0]).toMatchObject({ status: "fulfilled", value: expect.any(String) });
    expect(results[2]).toMatchObject({ status: "fulfilled", value: expect.any(String) });
    expect(results[1]?.status).toBe("rejected");
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(KvCorruptError);
    expect([
      dec(await store.get("good1")),
      dec(await store.get("bad")),
      dec(await store.get("good2")),
    ]).toEqual(["good1!", "bad", "good2!"]);
  });

  it("a compare-and-set batched before a failing one answers true for the write it applied", async () => {
    // The first operation of a turn goes out alone; the next three share one script, the bad key in the middle.
    const keys = ["lead", "before", "bad", "after"];
    for (const k of keys) await store.set(k, enc(k));
    const versions = await Promise.all(keys.map((k) => store.getVersioned(k)));
    const badVersion = createKeySpace("co:").version("bad");
    await admin.del(badVersion);
    await admin.hSet(badVersion, "f", "v");
    await admin.configResetStat();
    const results = await Promise.allSettled(
      keys.map((k, i) => store.compareAndSet(k, versions[i]?.version ?? null, enc(`${k}!`))),
    );
    expect(
      results.map((r) => (r.status === "fulfilled" ? typeof r.value : r.reason.constructor.name)),
    ).toEqual(["string", "string", "KvCorruptError", "string"]);
    expect(await Promise.all(keys.map(async (k) => dec(await store.get(k))))).toEqual([
      "lead!",
      "before!",
      "bad",
      "after!",
    ]);
    // One lone script and one batch script: nothing was sent again one by one.
    expect((await commandCalls()).evalsha).toBe(2);
  });

  it("a value key holding another type: a lone get fails typed; batched reads (MGET) see it as absent", async () => {
    await store.set("good", enc("g"));
    await admin.hSet("co:bad", "f", "v");
    await expect(store.get("bad")).rejects.toBeInstanceOf(KvCorruptError);
    const [good, bad] = await Promise.all([store.getVersioned("good"), store.getVersioned("bad")]);
    expect(dec(good.value)).toBe("g");
    expect(bad).toMatchObject({ value: undefined, version: null });
    // …and a compare-and-set that takes it for absent cannot overwrite it.
    expect(await store.compareAndSet("bad", null, enc("x"))).toBe(false);
    expect(await admin.type("co:bad")).toBe("hash");
  });
});
