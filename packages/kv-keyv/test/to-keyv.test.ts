import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createPostgresStore } from "@kvsession/kv-postgres";
import { requireService } from "@kvsession/kv-test-suite";
import { Keyv as Keyv5 } from "keyv5";
import { Keyv as Keyv6 } from "keyv6";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { toKeyv } from "../src/index.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// biome-ignore lint/suspicious/noExplicitAny: Keyv 5 and Keyv 6 constructors share no declared type
const MAJORS: Array<{ major: 5 | 6; Keyv: new (...args: any[]) => any }> = [
  { major: 5, Keyv: Keyv5 },
  { major: 6, Keyv: Keyv6 },
];

/** Keyv's own API over a kvsession store: what an existing Keyv user's code does, unchanged. */
function keyvSuite(name: string, makeStore: () => Promise<KvStore>) {
  for (const { major, Keyv } of MAJORS) keyvSuiteUnder(major, Keyv, name, makeStore);
}

function keyvSuiteUnder(
  major: 5 | 6,
  // biome-ignore lint/suspicious/noExplicitAny: see MAJORS
  Keyv: new (...args: any[]) => any,
  name: string,
  makeStore: () => Promise<KvStore>,
) {
  describe(`toKeyv(${name}) through Keyv ${major}'s API`, () => {
    it("gets, sets any JSON-able value (Buffers too), deletes and clears", async () => {
      const keyv = new Keyv({ store: toKeyv(await makeStore()), throwOnErrors: true });
      await keyv.clear();
      expect(await keyv.set("n", 42)).toBe(true);
      await keyv.set("o", { nested: [1, "two", null], when: "2024-01-01" });
      await keyv.set("b", Buffer.from([0, 1, 255]));
      await keyv.set(":colon", ":leading colon");
      expect(await keyv.get("n")).toBe(42);
      expect(await keyv.get("o")).toEqual({ nested: [1, "two", null], when: "2024-01-01" });
      expect([...((await keyv.get("b")) as Buffer)]).toEqual([0, 1, 255]);
      expect(await keyv.get(":colon")).toBe(":leading colon");
      expect(await keyv.has("n")).toBe(true);
      expect(await keyv.delete("n")).toBe(true);
      expect(await keyv.delete("n")).toBe(false);
      expect(await keyv.get("n")).toBeUndefined();
      await keyv.clear();
      expect(await keyv.get("o")).toBeUndefined();
      await keyv.disconnect();
    });

    it("expires entries after their TTL (ms), per call and by default", async () => {
      // Only what must be gone is read after a short TTL: "long", written the same way, shows the writes landed.
      const keyv = new Keyv({ store: toKeyv(await makeStore()), ttl: 1_000, throwOnErrors: true });
      await keyv.clear();
      await keyv.set("default", "d");
      await keyv.set("short", "s", 900);
      await keyv.set("long", "l", 60_000);
      await sleep(1_100);
      expect(await keyv.get("short")).toBeUndefined();
      expect(await keyv.get("default")).toBeUndefined();
      expect(await keyv.get("long")).toBe("l");
      await keyv.disconnect();
    });

    it("keeps namespaces apart: same key, different values, and clear() empties only its own", async () => {
      const store = await makeStore();
      await store.clear();
      const a = new Keyv({ store: toKeyv(store), namespace: "a", throwOnErrors: true });
      const b = new Keyv({ store: toKeyv(store), namespace: "b", throwOnErrors: true });
      await a.set("k", "A");
      await b.set("k", "B");
      expect(await a.get("k")).toBe("A");
      expect(await b.get("k")).toBe("B");
      await a.clear();
      expect(await a.get("k")).toBeUndefined();
      expect(await b.get("k")).toBe("B");
      // The namespace is a literal prefix in the store, visible to kvsession code as well.
      expect(await store.has("b:k")).toBe(true);
      await store.clear();
      await store.close();
    });

    it("gets, sets and deletes many at once, in order", async () => {
      const keyv = new Keyv({ store: toKeyv(await makeStore()), throwOnErrors: true });
      await keyv.clear();
      await keyv.setMany([
        { key: "x", value: 1 },
        { key: "y", value: "two", ttl: 60_000 },
      ]);
      expect(await keyv.getMany(["x", "missing", "y"])).toEqual([1, undefined, "two"]);
      expect(await keyv.get(["y", "x"])).toEqual(["two", 1]);
      expect(await keyv.hasMany(["x", "nope"])).toEqual([true, false]);
      // Keyv 5 answers for the whole batch, Keyv 6 for each key.
      expect(await keyv.deleteMany(["x", "y", "nope"])).toEqual(major === 5 ? false : [true, true, false]);
      expect(await keyv.getMany(["x", "y"])).toEqual([undefined, undefined]);
      await keyv.disconnect();
    });

    it("iterates its own namespace through the adapter's iterator", async () => {
      const store = await makeStore();
      await store.clear();
      const adapter = toKeyv(store);
      const keyv = new Keyv({ store: adapter, namespace: "it", throwOnErrors: true });
      await keyv.set("1", "one");
      await keyv.set("2", "two");
      await store.set("other:3", new TextEncoder().encode("not keyv"));
      const seen: Array<[string, string]> = [];
      for await (const [k, raw] of adapter.iterator("it")) seen.push([k, raw]);
      // Keyv 5 strips its namespace from the keys itself; Keyv 6 leaves the namespace to the adapter.
      expect(seen.map(([k]) => k)).toEqual(major === 5 ? ["it:1", "it:2"] : ["1", "2"]);
      expect(JSON.parse(seen[0]![1]).value).toBe("one");
      // Keyv 5 offers keyv.iterator() only for the dialects on its list (postgres is, memory is not).
      expect(typeof keyv.iterator).toBe(major === 6 || store.name === "postgres" ? "function" : "undefined");
      if (keyv.iterator) {
        const viaKeyv: unknown[] = [];
        for await (const [k, v] of keyv.iterator(undefined)) viaKeyv.push([k, v]);
        expect(viaKeyv).toEqual([
          ["1", "one"],
          ["2", "two"],
        ]);
      }
      await store.clear();
      await keyv.disconnect();
    });

    it("reports failures as typed errors through Keyv's 'error' event, and rejects as Keyv is told to", async () => {
      const store = await makeStore();
      const keyv = new Keyv({ store: toKeyv(store), throwOnErrors: true });
      const events: unknown[] = [];
      keyv.on("error", (e: unknown) => events.push(e));
      await store.close();
      if (major === 5) await expect(keyv.set("k", "v")).rejects.toMatchObject({ code: "KV_CLOSED" });
      // Keyv 6 has no throwOnErrors: with an 'error' listener a failed call answers its fallback.
      else expect(await keyv.set("k", "v")).toBe(false);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ code: "KV_CLOSED" });
      if (major === 6) {
        // Without a listener Keyv 6 rejects with the error.
        const bare = new Keyv({ store: toKeyv(store) });
        await expect(bare.get("k")).rejects.toMatchObject({ code: "KV_CLOSED" });
      }
    });
  });
}

keyvSuite("createMemoryStore()", async () => createMemoryStore());

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const probePg = async () => {
  const c = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
};
if (await requireService(`PostgreSQL at ${DATABASE_URL}`, probePg)) {
  const table = `kvt_tokeyv_${process.pid}_${Date.now().toString(36)}`;
  afterAll(async () => {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP TABLE IF EXISTS "${table}"`);
    await c.query("DELETE FROM kvsession_meta WHERE table_name = $1", [table]).catch(() => {});
    await c.end();
  });
  keyvSuite("createPostgresStore()", () =>
    createPostgresStore({ connectionString: DATABASE_URL, max: 2 }, { table, sweepIntervalMs: false }),
  );
}
