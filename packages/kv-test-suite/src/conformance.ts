import {
  KvArgumentError,
  KvClosedError,
  KvError,
  KvKeyError,
  type KvStore,
  KvUnsupportedError,
  KvValueTooLargeError,
} from "@kvsession/kv";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { checkForgedCursors } from "./cursors.js";
import { runModelCheck } from "./model.js";

export interface ConformanceOptions {
  /** Extra time allowed past a deadline before an entry must be gone (native-TTL engines). Default 40 ms. */
  ttlSlackMs?: number;
  /** Size of the "large value" case. Default 1 MiB. */
  largeValueBytes?: number;
  /** Writers racing in the CAS and setIfAbsent cases. Default 16. */
  concurrency?: number;
  /** fast-check runs of the model test. Default 40. */
  modelRuns?: number;
  /** Called after each test with the store (already closed or not). Default: clear() then close(). */
  cleanup?: (store: KvStore) => Promise<void> | void;
  /**
   * A second store on the same engine whose keys the store under test must never see: another
   * table, namespace or directory. When given, the cursor tests also replay this store's cursors
   * against the store under test, and forge cursors naming its keys. Called once per such test,
   * after `factory`; the suite clears and closes it.
   */
  neighbour?: () => KvStore | Promise<KvStore>;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keys that break naive drivers: traversal, globs, SQL and LIKE specials, separators, Unicode. */
export const ODD_KEYS: readonly string[] = [
  "a",
  "A",
  "a ",
  " a",
  "../x",
  "../../etc/passwd",
  "/abs/path",
  "C:\\win\\path",
  "dir/",
  ".",
  "..",
  "*",
  "?",
  "[a-z]",
  "a*b?c[d]\\e",
  "%",
  "_",
  "100%_done",
  "it's",
  'say "hi"',
  "'; DROP TABLE kv; --",
  "tab\there",
  "new\nline",
  "\u00e9",
  "e\u0301",
  "ключ",
  "鍵",
  "😀",
  "a:b:c",
  "CON",
  "{hash}tag",
  "~tilde",
];

/**
 * Registers the contract's tests for a store, inside the caller's vitest file.
 * `factory` is called once per test and must return a store on an isolated
 * namespace; the suite clears it before and after each test.
 *
 * @example
 * import { runStoreConformance } from "@kvsession/kv-test-suite";
 * runStoreConformance("my-driver", () => createMyStore({ table: "kv_conformance" }));
 */
export function runStoreConformance(
  name: string,
  factory: () => KvStore | Promise<KvStore>,
  options: ConformanceOptions = {},
): void {
  const slack = options.ttlSlackMs ?? 40;
  const largeBytes = options.largeValueBytes ?? 1024 * 1024;
  const concurrency = options.concurrency ?? 16;

  describe(`${name}: kv contract`, () => {
    let store: KvStore;
    beforeEach(async () => {
      store = await factory();
      await store.clear();
    });
    afterEach(async () => {
      if (options.cleanup) await options.cleanup(store);
      else {
        await store.clear().catch((e) => {
          if (!(e instanceof KvClosedError)) throw e;
        });
        await store.close();
      }
    });

    describe("basic operations", () => {
      it("returns undefined for a missing key", async () => {
        expect(await store.get("missing")).toBeUndefined();
        expect(await store.getEntry("missing")).toBeUndefined();
        expect(await store.has("missing")).toBe(false);
      });

      it("sets, gets, overwrites and deletes", async () => {
        await store.set("k", enc("one"));
        expect(dec(await store.get("k"))).toBe("one");
        expect(await store.has("k")).toBe(true);
        await store.set("k", enc("two"));
        expect(dec(await store.get("k"))).toBe("two");
        expect(await store.delete("k")).toBe(true);
        expect(await store.delete("k")).toBe(false);
        expect(await store.get("k")).toBeUndefined();
      });

      it("reports the capabilities it is tested under", () => {
        const c = store.capabilities;
        expect(["native", "emulated"]).toContain(c.ttl);
        expect(c.maxKeyBytes).toBeGreaterThanOrEqual(250);
        expect(c.maxValueBytes).toBeGreaterThanOrEqual(largeBytes);
        expect(c.ttlGranularityMs).toBeGreaterThan(0);
        expect(typeof c.settlesInTurn).toBe("boolean");
      });

      it("settles every operation before the event loop turns, if it says so (settlesInTurn)", async () => {
        const c = store.capabilities;
        if (!c.settlesInTurn) return expect(c.settlesInTurn).toBe(false);
        const ops: Array<() => Promise<unknown>> = [
          () => store.set("k", enc("v")),
          () => store.get("k"),
          () => store.getMany(["k", "k2"]),
          () => store.setMany([{ key: "k2", value: enc("w") }]),
          () => store.has("k"),
          () => store.delete("k"),
        ];
        if (c.setIfAbsent) ops.push(() => store.setIfAbsent("k3", enc("x")));
        if (c.compareAndSet)
          ops.push(() =>
            store.getVersioned("k2").then((v) => store.compareAndSet("k2", v.version, enc("y"))),
          );
        for (const op of ops) {
          let settled = false;
          const done = op().then(() => {
            settled = true;
          });
          await new Promise<void>((r) => setImmediate(r));
          expect(settled).toBe(true);
          await done;
        }
      });
    });

    describe("values are bytes, stored as given", () => {
      it("round-trips every byte value", async () => {
        const all = new Uint8Array(256).map((_, i) => i);
        await store.set("bin", all);
        expect(Array.from((await store.get("bin"))!)).toEqual(Array.from(all));
      });

      it("round-trips an empty value, which is distinct from absent", async () => {
        await store.set("empty", new Uint8Array(0));
        const got = await store.get("empty");
        expect(got).toBeInstanceOf(Uint8Array);
        expect(got!.byteLength).toBe(0);
        expect(await store.has("empty")).toBe(true);
      });

      it("stores a view into a larger buffer by its own bytes only", async () => {
        const backing = new Uint8Array(64).map((_, i) => i);
        await store.set("view", backing.subarray(10, 14));
        expect(Array.from((await store.get("view"))!)).toEqual([10, 11, 12, 13]);
      });

      it("is not affected by the caller mutating the buffer after set or after get", async () => {
        const v = enc("abc");
        await store.set("m", v);
        v[0] = 0x7a;
        const got = (await store.get("m"))!;
        expect(dec(got)).toBe("abc");
        got[1] = 0x7a;
        expect(dec(await store.get("m"))).toBe("abc");
      });

      it(`round-trips a large value (${largeBytes} bytes)`, async () => {
        const big = new Uint8Array(largeBytes);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
        await store.set("big", big);
        const got = (await store.get("big"))!;
        expect(got.byteLength).toBe(largeBytes);
        expect(Buffer.compare(Buffer.from(got), Buffer.from(big))).toBe(0);
      });

      it("refuses a value over the declared limit with KvValueTooLargeError, and keeps the old one", async () => {
        const limit = store.capabilities.maxValueBytes;
        if (limit > 64 * 1024 * 1024) {
          // Beyond what a test should allocate: check the wrapper's refusal through the declared number instead.
          expect(limit).toBeGreaterThan(64 * 1024 * 1024);
          return;
        }
        await store.set("big", enc("old"));
        await expect(store.set("big", new Uint8Array(limit + 1))).rejects.toBeInstanceOf(
          KvValueTooLargeError,
        );
        expect(dec(await store.get("big"))).toBe("old");
      });

      it("refuses a value that is not a Uint8Array", async () => {
        // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
        await expect(store.set("k", "text" as any)).rejects.toBeInstanceOf(KvArgumentError);
      });
    });

    describe("keys are opaque, validated, never rewritten", () => {
      it("keeps every odd key distinct and readable", async () => {
        await store.setMany(ODD_KEYS.map((key, i) => ({ key, value: enc(String(i)) })));
        for (const [i, key] of ODD_KEYS.entries()) expect(dec(await store.get(key)), key).toBe(String(i));
        const listed = new Set<string>();
        for await (const k of store.keys()) listed.add(k);
        expect([...listed].sort()).toEqual([...ODD_KEYS].sort());
      });

      it("accepts a key of exactly the maximum length and refuses one byte more", async () => {
        const max = store.capabilities.maxKeyBytes;
        const atMax = "k".repeat(max);
        await store.set(atMax, enc("max"));
        expect(dec(await store.get(atMax))).toBe("max");
        await expect(store.set("k".repeat(max + 1), enc("x"))).rejects.toBeInstanceOf(KvKeyError);
        // Multi-byte characters count in UTF-8 bytes.
        await expect(store.set("é".repeat(Math.floor(max / 2) + 1), enc("x"))).rejects.toBeInstanceOf(
          KvKeyError,
        );
        await expect(store.get("k".repeat(10 * 1024 + max))).rejects.toBeInstanceOf(KvKeyError);
      });

      it("counts a view's prefix in the key length", async () => {
        const max = store.capabilities.maxKeyBytes;
        const view = store.withPrefix("pfx:é");
        expect(view.capabilities.maxKeyBytes).toBe(max - 6);
        await expect(view.set("k".repeat(max - 5), enc("x"))).rejects.toBeInstanceOf(KvKeyError);
        await view.set("k".repeat(max - 6), enc("x"));
        expect(await store.has(`pfx:é${"k".repeat(max - 6)}`)).toBe(true);
      });

      it("refuses empty, NUL, lone-surrogate and non-string keys with KvKeyError", async () => {
        for (const bad of ["", "a\0b", "\ud800", "x\udc00y"]) {
          await expect(store.set(bad, enc("x")), JSON.stringify(bad)).rejects.toBeInstanceOf(KvKeyError);
          await expect(store.get(bad)).rejects.toBeInstanceOf(KvKeyError);
          await expect(store.delete(bad)).rejects.toBeInstanceOf(KvKeyError);
        }
        // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
        await expect(store.get(42 as any)).rejects.toBeInstanceOf(KvKeyError);
        // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
        await expect(store.get(undefined as any)).rejects.toBeInstanceOf(KvKeyError);
      });

      it("refuses a bad key in a batch before writing any of it", async () => {
        await expect(
          store.setMany([
            { key: "good", value: enc("1") },
            { key: "", value: enc("2") },
          ]),
        ).rejects.toBeInstanceOf(KvKeyError);
        expect(await store.has("good")).toBe(false);
      });
    });

    describe("expiry", () => {
      // Liveness is checked on long deadlines and expiry on short ones, so a slow machine can delay
      // an answer past a deadline without failing the test.
      it("returns a live entry with its deadline", async () => {
        const before = Date.now();
        await store.set("t", enc("v"), { ttl: 60_000 });
        expect(dec(await store.get("t"))).toBe("v");
        expect(await store.has("t")).toBe(true);
        const entry = await store.getEntry("t");
        expect(entry && dec(entry.value)).toBe("v");
        if (entry?.expiresAt !== undefined) {
          expect(entry.expiresAt).toBeGreaterThanOrEqual(
            before + 60_000 - store.capabilities.ttlGranularityMs,
          );
          expect(entry.expiresAt).toBeLessThanOrEqual(
            Date.now() + 60_000 + store.capabilities.ttlGranularityMs,
          );
        }
      });

      it("drops an entry after its TTL, from every read", async () => {
        await store.set("t", enc("v"), { ttl: 150 });
        await sleep(150 + slack);
        expect(await store.get("t")).toBeUndefined();
        expect(await store.getEntry("t")).toBeUndefined();
        expect(await store.has("t")).toBe(false);
        expect(await store.getMany(["t"])).toEqual([undefined]);
        expect((await store.listKeys()).keys).not.toContain("t");
        expect(await store.delete("t")).toBe(false);
      });

      it("honours an absolute deadline, and treats a past one as gone", async () => {
        const deadline = Date.now() + 60_000;
        await store.set("abs", enc("v"), { expiresAt: deadline });
        expect(await store.has("abs")).toBe(true);
        const entry = await store.getEntry("abs");
        if (entry?.expiresAt !== undefined) {
          expect(entry.expiresAt).toBeGreaterThanOrEqual(deadline - store.capabilities.ttlGranularityMs);
          expect(entry.expiresAt).toBeLessThanOrEqual(
            Date.now() + 60_000 + store.capabilities.ttlGranularityMs,
          );
        }
        await store.set("soon", enc("v"), { expiresAt: Date.now() + 100 });
        await store.set("past", enc("v"));
        await store.set("past", enc("v2"), { expiresAt: Date.now() - 1 });
        expect(await store.get("past")).toBeUndefined();
        await sleep(100 + slack);
        expect(await store.get("soon")).toBeUndefined();
        expect(dec(await store.get("abs"))).toBe("v");
      });

      it("removes the expiry when a key is overwritten without a TTL", async () => {
        await store.set("k", enc("v"), { ttl: 80 });
        await store.set("k", enc("w"));
        await sleep(80 + slack);
        expect(dec(await store.get("k"))).toBe("w");
      });

      it("applies per-item TTLs in setMany", async () => {
        await store.setMany([
          { key: "short", value: enc("s"), ttl: 80 },
          { key: "long", value: enc("l") },
        ]);
        await sleep(80 + slack);
        expect(await store.getMany(["short", "long"]).then((r) => r.map(dec))).toEqual([undefined, "l"]);
      });

      it("refuses a zero, negative or non-finite TTL with KvArgumentError", async () => {
        for (const ttl of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expect(store.set("k", enc("v"), { ttl }), String(ttl)).rejects.toBeInstanceOf(
            KvArgumentError,
          );
        }
        await expect(
          store.set("k", enc("v"), { ttl: 10, expiresAt: Date.now() + 10 }),
        ).rejects.toBeInstanceOf(KvArgumentError);
        expect(await store.has("k")).toBe(false);
      });

      it("treats the deadline instant itself as expired (emulated TTL, exact clock)", async () => {
        if (store.capabilities.ttl !== "emulated") {
          expect(store.capabilities.ttl).toBe("native");
          return;
        }
        const t0 = Date.now() + 10_000;
        vi.useFakeTimers({ toFake: ["Date"], now: t0 });
        try {
          await store.set("edge", enc("v"), { ttl: 1000 });
          vi.setSystemTime(t0 + 999);
          expect(dec(await store.get("edge"))).toBe("v");
          vi.setSystemTime(t0 + 1000);
          expect(await store.get("edge")).toBeUndefined();
          expect(await store.has("edge")).toBe(false);
        } finally {
          vi.useRealTimers();
        }
      });
    });

    describe("batches", () => {
      it("returns one result per item, in order", async () => {
        await store.setMany([
          { key: "a", value: enc("1") },
          { key: "c", value: enc("3") },
        ]);
        expect((await store.getMany(["a", "b", "c", "a"])).map(dec)).toEqual(["1", undefined, "3", "1"]);
        expect(await store.deleteMany(["a", "b", "c"])).toEqual([true, false, true]);
        expect(await store.getMany([])).toEqual([]);
        expect(await store.deleteMany([])).toEqual([]);
        await store.setMany([]);
      });

      it("writes a batch of 500", async () => {
        const writes = Array.from({ length: 500 }, (_, i) => ({ key: `b${i}`, value: enc(`v${i}`) }));
        await store.setMany(writes);
        const got = await store.getMany(writes.map((w) => w.key));
        expect(got.map(dec)).toEqual(writes.map((w) => `v${w.key.slice(1)}`));
      });
    });

    describe("listing", () => {
      it("pages through every key by prefix with a cursor", async () => {
        const keys = Array.from({ length: 123 }, (_, i) => `user:${String(i).padStart(3, "0")}`);
        await store.setMany(keys.map((key) => ({ key, value: enc(key) })));
        await store.setMany([
          { key: "userX", value: enc("x") },
          { key: "other:1", value: enc("o") },
        ]);
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.listKeys({ prefix: "user:", cursor, limit: 10 });
          expect(page.keys.length).toBeLessThanOrEqual(10);
          seen.push(...page.keys);
          cursor = page.cursor;
          pages++;
          expect(pages).toBeLessThan(1000);
        } while (cursor !== undefined);
        expect(pages).toBeGreaterThanOrEqual(13);
        if (store.capabilities.orderedListing) expect(seen.length).toBe(keys.length);
        expect([...new Set(seen)].sort()).toEqual(keys);
      });

      it("lists entries with their values", async () => {
        await store.setMany([
          { key: "e:1", value: enc("one") },
          { key: "e:2", value: enc("two"), ttl: 60_000 },
        ]);
        const got = new Map<string, string | undefined>();
        for await (const e of store.entries("e:", 1)) got.set(e.key, dec(e.value));
        expect(Object.fromEntries(got)).toEqual({ "e:1": "one", "e:2": "two" });
      });

      it("matches prefixes literally, glob and LIKE characters included", async () => {
        const keys = ["a*1", "a*2", "ab", "a?1", "a%1", "a_1", "aX1", "a[1]", "a[", "a\\1", "a\\\\1"];
        await store.setMany(keys.map((key) => ({ key, value: enc(key) })));
        for (const prefix of ["a*", "a?", "a%", "a_", "a[", "a\\"]) {
          const listed = new Set<string>();
          for await (const k of store.keys(prefix, 3)) listed.add(k);
          expect([...listed].sort(), prefix).toEqual(keys.filter((k) => k.startsWith(prefix)).sort());
        }
      });

      it("keeps listing consistent while keys are written and deleted", async () => {
        const keys = Array.from({ length: 60 }, (_, i) => `s${String(i).padStart(2, "0")}`);
        await store.setMany(keys.map((key) => ({ key, value: enc("v") })));
        const seen = new Set<string>();
        let i = 0;
        for await (const k of store.keys("s", 7)) {
          seen.add(k);
          if (i++ === 10) {
            await store.set("s99", enc("new"));
            await store.delete("s59");
          }
        }
        // Keys present for the whole listing are all returned.
        for (const k of keys.slice(0, 59)) expect(seen.has(k), k).toBe(true);
      });

      it("refuses an empty or non-string cursor with KvArgumentError", async () => {
        for (const cursor of ["", 42, null, {}]) {
          // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
          const run = () => store.listKeys({ prefix: "b:", cursor: cursor as any });
          await expect(run(), JSON.stringify(cursor)).rejects.toBeInstanceOf(KvArgumentError);
        }
      });

      it("never lets a cursor it did not hand out for this listing reach another prefix's keys (or another store's)", async () => {
        const neighbour = options.neighbour ? await options.neighbour() : undefined;
        try {
          await checkForgedCursors(store, neighbour);
        } finally {
          if (neighbour) {
            await neighbour.clear();
            await neighbour.close();
          }
        }
      });

      it("refuses a bad page size", async () => {
        for (const limit of [0, -1, 1.5, 100_000]) {
          await expect(store.listKeys({ limit }), String(limit)).rejects.toBeInstanceOf(KvArgumentError);
        }
      });
    });

    describe("prefix views", () => {
      it("isolate each other and never mutate the store they come from", async () => {
        const a = store.withPrefix("a:");
        const b = store.withPrefix("b:");
        const base = store.prefix;
        expect(a.prefix).toBe(`${base}a:`);
        expect(store.prefix).toBe(base);
        await a.set("k", enc("A"));
        await b.set("k", enc("B"));
        expect(dec(await a.get("k"))).toBe("A");
        expect(dec(await b.get("k"))).toBe("B");
        expect(dec(await store.get("a:k"))).toBe("A");
        expect(await store.get("k")).toBeUndefined();
        const inA: string[] = [];
        for await (const k of a.keys()) inA.push(k);
        expect(inA).toEqual(["k"]);
      });

      it("nest by concatenation", async () => {
        const inner = store.withPrefix("x:").withPrefix("y:");
        expect(inner.prefix).toBe(`${store.prefix}x:y:`);
        await inner.set("k", enc("v"));
        expect(dec(await store.get("x:y:k"))).toBe("v");
      });

      it("scope clear() to the view", async () => {
        const a = store.withPrefix("a:");
        await store.setMany([
          { key: "a:1", value: enc("1") },
          { key: "a:2", value: enc("2") },
          { key: "a", value: enc("bare") },
          { key: "ab:1", value: enc("3") },
          { key: "b:1", value: enc("4") },
        ]);
        await a.clear();
        expect((await store.getMany(["a:1", "a:2", "a", "ab:1", "b:1"])).map(dec)).toEqual([
          undefined,
          undefined,
          "bare",
          "3",
          "4",
        ]);
        await store.clear();
        expect((await store.listKeys()).keys).toEqual([]);
      });
    });

    describe("setIfAbsent", () => {
      it("writes only when absent or expired", async () => {
        if (!store.capabilities.setIfAbsent) {
          await expect(store.setIfAbsent("k", enc("v"))).rejects.toBeInstanceOf(KvUnsupportedError);
          return;
        }
        expect(await store.setIfAbsent("k", enc("first"))).toBe(true);
        expect(await store.setIfAbsent("k", enc("second"))).toBe(false);
        expect(dec(await store.get("k"))).toBe("first");
        await store.set("t", enc("old"), { ttl: 60 });
        await sleep(60 + slack);
        expect(await store.setIfAbsent("t", enc("new"), { ttl: 60_000 })).toBe(true);
        expect(dec(await store.get("t"))).toBe("new");
      });

      it(`lets exactly one of ${concurrency} racing writers win`, async () => {
        if (!store.capabilities.setIfAbsent) return expect(store.capabilities.setIfAbsent).toBe(false);
        const results = await Promise.all(
          Array.from({ length: concurrency }, (_, i) => store.setIfAbsent("race", enc(String(i)))),
        );
        expect(results.filter(Boolean).length).toBe(1);
        expect(dec(await store.get("race"))).toBe(String(results.indexOf(true)));
      });
    });

    describe("compare-and-set", () => {
      it("reads versions, creates from absent, and refuses a stale version", async () => {
        if (!store.capabilities.compareAndSet) {
          await expect(store.getVersioned("k")).rejects.toBeInstanceOf(KvUnsupportedError);
          await expect(store.compareAndSet("k", null, enc("v"))).rejects.toBeInstanceOf(KvUnsupportedError);
          return;
        }
        const absent = await store.getVersioned("k");
        expect(absent).toMatchObject({ value: undefined, version: null });
        const created = await store.compareAndSet("k", null, enc("v1"));
        expect(await store.compareAndSet("k", null, enc("again"))).toBe(false);
        const v1 = await store.getVersioned("k");
        expect(dec(v1.value)).toBe("v1");
        expect(typeof v1.version).toBe("string");
        // A write answers with the version it created: the one the next read sees.
        expect(created).toBe(v1.version);
        const written = await store.compareAndSet("k", v1.version, enc("v2"), { ttl: 60_000 });
        expect(await store.compareAndSet("k", v1.version, enc("v3"))).toBe(false);
        expect(dec(await store.get("k"))).toBe("v2");
        const v2 = await store.getVersioned("k");
        expect(v2.version).not.toBe(v1.version);
        expect(written).toBe(v2.version);
        // …and that version is good for the next compare-and-set without a read in between.
        const chained = await store.compareAndSet("k", written as string, enc("v2b"));
        expect(chained).toBe((await store.getVersioned("k")).version);
        expect(typeof chained === "string" && chained !== "").toBe(true);
        await store.set("k", enc("plain"));
        expect(await store.compareAndSet("k", chained as string, enc("v4"))).toBe(false);
      });

      it("never reuses a version after delete and re-create (no ABA)", async () => {
        if (!store.capabilities.compareAndSet) return expect(store.capabilities.compareAndSet).toBe(false);
        await store.set("k", enc("a"));
        const first = await store.getVersioned("k");
        await store.delete("k");
        expect(await store.compareAndSet("k", first.version, enc("x"))).toBe(false);
        await store.set("k", enc("a"));
        expect(await store.compareAndSet("k", first.version, enc("x"))).toBe(false);
        expect(dec(await store.get("k"))).toBe("a");
      });

      it("treats an expired entry as absent", async () => {
        if (!store.capabilities.compareAndSet) return expect(store.capabilities.compareAndSet).toBe(false);
        // The short-lived version comes from the write's own answer, so no read has to beat its deadline.
        await store.set("k", enc("old"), { ttl: 60_000 });
        const live = await store.getVersioned("k");
        const expiring = await store.compareAndSet("k", live.version, enc("older"), { ttl: 60 });
        expect(expiring).toEqual(expect.any(String));
        await sleep(60 + slack);
        expect(await store.getVersioned("k")).toMatchObject({ value: undefined, version: null });
        expect(await store.compareAndSet("k", expiring as string, enc("stale"))).toBe(false);
        expect(await store.compareAndSet("k", live.version, enc("stale"))).toBe(false);
        const recreated = await store.compareAndSet("k", null, enc("new"));
        expect(recreated).toBe((await store.getVersioned("k")).version);
        expect(dec(await store.get("k"))).toBe("new");
      });

      it(`lets exactly one of ${concurrency} writers holding the same version win`, async () => {
        if (!store.capabilities.compareAndSet) return expect(store.capabilities.compareAndSet).toBe(false);
        await store.set("k", enc("start"));
        const { version } = await store.getVersioned("k");
        const results = await Promise.all(
          Array.from({ length: concurrency }, (_, i) => store.compareAndSet("k", version, enc(`w${i}`))),
        );
        const won = results.filter((r) => r !== false);
        expect(won.length).toBe(1);
        expect(dec(await store.get("k"))).toBe(`w${results.findIndex((r) => r !== false)}`);
        expect(won[0]).toBe((await store.getVersioned("k")).version);
      });

      it("loses no increment when concurrent writers retry on conflict", async () => {
        if (!store.capabilities.compareAndSet) return expect(store.capabilities.compareAndSet).toBe(false);
        const increment = async () => {
          for (let attempt = 0; attempt < 1000; attempt++) {
            const { value, version } = await store.getVersioned("counter");
            const next = Number(dec(value) ?? "0") + 1;
            if (await store.compareAndSet("counter", version, enc(String(next)))) return;
          }
          throw new Error("no progress after 1000 attempts");
        };
        await Promise.all(Array.from({ length: concurrency }, increment));
        expect(dec(await store.get("counter"))).toBe(String(concurrency));
      });
    });

    describe("closing", () => {
      it("refuses every operation with KvClosedError, on views too, and closes idempotently", async () => {
        const view = store.withPrefix("v:");
        await store.set("k", enc("v"));
        await store.close();
        await store.close();
        const ops: Array<[string, () => Promise<unknown>]> = [
          ["get", () => store.get("k")],
          ["set", () => store.set("k", enc("v"))],
          ["delete", () => store.delete("k")],
          ["has", () => store.has("k")],
          ["getMany", () => store.getMany(["k"])],
          ["listKeys", () => store.listKeys()],
          ["clear", () => store.clear()],
          ["view.get", () => view.get("k")],
        ];
        for (const [op, run] of ops) await expect(run(), op).rejects.toBeInstanceOf(KvClosedError);
      });

      it("supports await using (Symbol.asyncDispose)", async () => {
        expect(typeof store[Symbol.asyncDispose]).toBe("function");
        await store[Symbol.asyncDispose]();
        await expect(store.get("k")).rejects.toBeInstanceOf(KvClosedError);
      });
    });

    describe("errors", () => {
      it("are KvError instances with a code and a message that says what to do", async () => {
        const err = await store.get("").catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KvError);
        expect((err as KvError).code).toBe("KV_INVALID_KEY");
        expect((err as KvError).message.length).toBeGreaterThan(10);
      });
    });

    it("agrees with a reference model on random operation sequences", async () => {
      await runModelCheck(store, options.modelRuns ?? 40);
    });
  });
}
