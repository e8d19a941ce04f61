import { createMemoryStore } from "@kvsession/kv";
import { Keyv as Keyv5 } from "keyv5";
import { Keyv, KeyvMemoryAdapter } from "keyv6";
import { describe, expect, it } from "vitest";
import { toKeyv } from "../src/index.js";
import { runKeyvTestSuite, storesUnderTest } from "./keyv-suite.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

/** The published @keyv/test-suite was written for Keyv 5; where Keyv 6 changed the answer on purpose. */
const KEYV6_DIFFERENCES = {
  ".deleteMany([keys]) with nonexistent keys resolves to false":
    "Keyv 6 answers one boolean per key, and [false, false, false] is truthy",
};

describe("Keyv 6 itself", () => {
  it("answers deleteMany of absent keys with one false per key on its own memory adapter too", async () => {
    const keyv = new Keyv({ store: new KeyvMemoryAdapter(new Map()) });
    expect(await keyv.delete(["foo", "foo1", "foo2"])).toEqual([false, false, false]);
  });
});

const stores = await storesUnderTest("k6");

for (const s of stores)
  runKeyvTestSuite(
    `@keyv/test-suite under Keyv 6: toKeyv(${s.name})`,
    Keyv,
    () => s.open(),
    KEYV6_DIFFERENCES,
  );

for (const s of stores)
  describe(`toKeyv(${s.name}): an app moving from Keyv 5 to Keyv 6 keeps its data`, () => {
    it("reads with Keyv 6 what Keyv 5 wrote, default and named namespaces alike, and the other way round", async () => {
      const store = await s.open();
      try {
        const old = new Keyv5({ store: toKeyv(store) });
        const oldCache = new Keyv5({ store: toKeyv(store), namespace: "cache" });
        await old.set("user", { name: "Ada" });
        const before = Date.now();
        await old.set("bytes", Buffer.from([0, 1, 255]), 60_000);
        const after = Date.now();
        await oldCache.set("user", "cached");
        await old.setMany([
          { key: "m1", value: 1 },
          { key: "m2", value: 2 },
        ]);

        const keyv = new Keyv({ store: toKeyv(store) });
        const cache = new Keyv({ store: toKeyv(store), namespace: "cache" });
        expect(keyv.namespace).toBe("keyv");
        expect(await keyv.get("user")).toEqual({ name: "Ada" });
        expect([...((await keyv.get("bytes")) as Uint8Array)]).toEqual([0, 1, 255]);
        expect(await cache.get("user")).toBe("cached");
        expect(await keyv.getMany(["m1", "m2", "user"])).toEqual([1, 2, { name: "Ada" }]);
        // The deadline Keyv 5 wrote still governs the entry.
        const { expires } = (await keyv.getRaw("bytes")) as { expires: number };
        expect(expires).toBeGreaterThanOrEqual(before + 60_000);
        expect(expires).toBeLessThanOrEqual(after + 60_000);

        const seen: unknown[] = [];
        for await (const [k, v] of cache.iterator()) seen.push([k, v]);
        expect(seen).toEqual([["user", "cached"]]);

        await keyv.set("written by 6", [6]);
        await cache.set("written by 6", "six");
        expect(await old.get("written by 6")).toEqual([6]);
        expect(await oldCache.get("written by 6")).toBe("six");
        // One layout for both majors: `namespace:key`, visible to kvsession code too.
        expect(await store.has("keyv:written by 6")).toBe(true);
        expect(await store.has("cache:written by 6")).toBe(true);
      } finally {
        await store.close();
      }
    });

    it("clears only the default namespace's keys under Keyv 6, as Keyv 5 did", async () => {
      const store = await s.open();
      try {
        await store.set("not keyv", enc("kept"));
        const cache = new Keyv({ store: toKeyv(store), namespace: "cache" });
        await cache.set("k", "cached");
        const keyv = new Keyv({ store: toKeyv(store) });
        await keyv.set("k", "default");
        await keyv.clear();
        expect(await keyv.get("k")).toBeUndefined();
        expect(await cache.get("k")).toBe("cached");
        expect(dec(await store.get("not keyv"))).toBe("kept");
        await cache.clear();
        expect(await cache.get("k")).toBeUndefined();
        expect(dec(await store.get("not keyv"))).toBe("kept");
      } finally {
        await store.close();
      }
    });
  });

describe("toKeyv under Keyv 6 without a namespace", () => {
  it("stores keys bare when asked to, and clear() then empties the whole store, as Keyv 6 documents", async () => {
    const store = createMemoryStore();
    const keyv = new Keyv({ store: toKeyv(store, { namespace: "" }) });
    expect(keyv.namespace).toBeUndefined();
    await keyv.set("k", "v");
    expect(await store.has("k")).toBe(true);
    await store.set("other", enc("x"));
    await keyv.clear();
    expect(await store.has("other")).toBe(false);
  });
});
