import { requireService } from "@kvsession/kv-test-suite";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createPostgresStore } from "../src/index.js";
import { DATABASE_URL, dropTable, probe, uniqueTable } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
/**
 * Lets the event loop finish the turn in which the previous test's answers arrived: the coalescer
 * queues the first operation of a turn that already had two answers (their callers are issuing more),
 * so whether it goes out alone would otherwise depend on how the answers were spread over turns.
 */
const nextTurn = () => new Promise((r) => setImmediate(r));
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

if (await requireService(`PostgreSQL at ${DATABASE_URL}`, () => probe())) {
  describe("kv-postgres: reads issued in one turn share a statement", () => {
    const table = uniqueTable("batch");
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    /** Statements the store sent through the pool, by the name after the table tag (`get`, `mget`…). */
    const sent: string[] = [];
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    (pool as unknown as { query: unknown }).query = (config: { name?: string }, ...rest: unknown[]) => {
      if (typeof config === "object" && config?.name) sent.push(config.name.replace(/^kvs_[0-9a-f]+_/, ""));
      return query(config, ...rest);
    };
    const opened = createPostgresStore({ pool }, { table, sweepIntervalMs: false });
    afterAll(async () => {
      await (await opened).close();
      await pool.end();
      await dropTable(table);
    });

    it("64 gets: the first alone at once, the other 63 as four statements of at most 16 keys, each its own answer", async () => {
      const store = await opened;
      await store.setMany(Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, value: enc(`v${i}`) })));
      await store.set("gone", enc("x"), { ttl: 1 });
      await new Promise((r) => setTimeout(r, 5));
      sent.length = 0;
      const keys = [...Array.from({ length: 60 }, (_, i) => `k${i}`), "missing", "gone", "k7", "k7"];
      const got = await Promise.all(keys.map((k) => store.get(k)));
      expect(got.map(dec)).toEqual([
        ...Array.from({ length: 60 }, (_, i) => `v${i}`),
        undefined,
        undefined,
        "v7",
        "v7",
      ]);
      expect(sent).toEqual(["get", "mget", "mget", "mget", "mget"]);
    });

    it("64 sets: one alone, then four upserts of at most 16 rows; a key written twice in one turn keeps the last", async () => {
      const store = await opened;
      await nextTurn();
      sent.length = 0;
      const t0 = Date.now();
      await Promise.all([
        ...Array.from({ length: 62 }, (_, i) => store.set(`s${i}`, enc(`w${i}`), { ttl: 60_000 })),
        store.set("twice", enc("first")),
        store.set("twice", enc("second")),
      ]);
      expect(sent).toEqual(["set", "mset", "mset", "mset", "mset"]);
      const got = await store.getMany([...Array.from({ length: 62 }, (_, i) => `s${i}`), "twice"]);
      expect(got.map(dec)).toEqual([...Array.from({ length: 62 }, (_, i) => `w${i}`), "second"]);
      // The deadline is the write's own (a minute after it), however long the machine took since.
      expect((await store.getEntry("s61"))?.expiresAt).toBeGreaterThanOrEqual(t0 + 60_000);
    });

    it("batched versioned reads hand each key its own version; compare-and-set with them wins once per key", async () => {
      const store = await opened;
      await nextTurn();
      sent.length = 0;
      const keys = ["k1", "k2", "missing", "k3"];
      const read = await Promise.all(keys.map((k) => store.getVersioned(k)));
      expect(sent).toEqual(["vget", "mvget"]);
      expect(read.map((r) => dec(r.value))).toEqual(["v1", "v2", undefined, "v3"]);
      expect(read[2]?.version).toBeNull();
      expect(new Set(read.map((r) => r.version)).size).toBe(4);
      const swapped = await Promise.all(
        keys.map((k, i) => store.compareAndSet(k, read[i]!.version, enc(`${k}!`))),
      );
      const after = await Promise.all(keys.map((k) => store.getVersioned(k)));
      expect(swapped).toEqual(after.map((r) => r.version));
      expect(swapped.every((v) => typeof v === "string")).toBe(true);
      const again = await Promise.all(
        keys.map((k, i) => store.compareAndSet(k, read[i]!.version, enc("late"))),
      );
      expect(again).toEqual([false, false, false, false]);
      expect(dec(await store.get("missing"))).toBe("missing!");
    });
  });
}
