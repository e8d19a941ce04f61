import { createMemoryStore } from "@kvsession/kv";
import { requireService } from "@kvsession/kv-test-suite";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createPostgresStore, SCHEMA_VERSION } from "../src/index.js";
import { DATABASE_URL, dropTable, probe, uniqueTable } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

if (await requireService(`PostgreSQL at ${DATABASE_URL}`, () => probe())) {
  describe("kv-postgres: schema, isolation and sweep", () => {
    const tables = ["race", "one", "two", "sweep", "shared"].map(uniqueTable);
    const [race, one, two, sweep, shared] = tables as [string, string, string, string, string];
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
    afterAll(async () => {
      await pool.end();
      for (const t of tables) await dropTable(t);
    });

    it("creates the table once when many stores start at the same time, and records its schema version", async () => {
      const stores = await Promise.all(
        Array.from({ length: 6 }, () =>
          createPostgresStore(
            { connectionString: DATABASE_URL, max: 2 },
            { table: race, sweepIntervalMs: false },
          ),
        ),
      );
      await Promise.all(stores.map((s, i) => s.set(`k${i}`, enc(String(i)))));
      expect((await stores[0]!.listKeys()).keys).toEqual(["k0", "k1", "k2", "k3", "k4", "k5"]);
      await Promise.all(stores.map((s) => s.close()));
      const meta = await pool.query("SELECT schema_version FROM kvsession_meta WHERE table_name = $1", [
        race,
      ]);
      expect(meta.rows).toEqual([{ schema_version: SCHEMA_VERSION }]);
      const cols = await pool.query(
        `SELECT column_name, data_type, collation_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
        [race],
      );
      expect(cols.rows).toEqual([
        { column_name: "key", data_type: "text", collation_name: "C" },
        { column_name: "value", data_type: "bytea", collation_name: null },
        { column_name: "expires_at", data_type: "bigint", collation_name: null },
        { column_name: "version", data_type: "bigint", collation_name: null },
      ]);
    });

    it("keeps stores on different tables apart: clear() of one never touches the other", async () => {
      const a = await createPostgresStore({ pool }, { table: one, sweepIntervalMs: false });
      const b = await createPostgresStore({ pool }, { table: two, sweepIntervalMs: false });
      await a.set("k", enc("A"));
      await b.set("k", enc("B"));
      await a.clear();
      expect(await a.get("k")).toBeUndefined();
      expect(dec(await b.get("k"))).toBe("B");
      // Closing a store on a pool it was given leaves the pool to its owner.
      await a.close();
      await b.close();
      expect((await pool.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
    });

    it("reclaims expired rows in bounded batches and leaves live ones", async () => {
      const store = await createPostgresStore({ pool }, { table: sweep, sweepIntervalMs: 20, sweepBatch: 7 });
      try {
        await store.set("live", enc("v"));
        await store.set("later", enc("v"), { ttl: 60_000 });
        // 50 rows already past their deadline, as an app server that crashed before sweeping leaves them.
        const now = Date.now();
        await pool.query(
          `INSERT INTO "${sweep}" (key, value, expires_at) SELECT 'old' || i, '\\x00', $1 FROM generate_series(1, 50) i`,
          [now - 1000],
        );
        let left = 52;
        for (let i = 0; i < 500 && left > 2; i++) {
          await new Promise((r) => setTimeout(r, 10));
          left = Number((await pool.query(`SELECT count(*) AS n FROM "${sweep}"`)).rows[0].n);
        }
        expect(left).toBe(2);
        expect(await store.getMany(["live", "later"]).then((r) => r.map(dec))).toEqual(["v", "v"]);
      } finally {
        await store.close();
      }
    });

    it("stores exactly the bytes of a Buffer slice of Node's shared pool, and hands out unshared buffers", async () => {
      const store = await createPostgresStore({ pool }, { table: shared, sweepIntervalMs: false });
      try {
        const pooled = Buffer.from("abc"); // a view into Node's 8 KiB allocation pool
        expect(pooled.buffer.byteLength).toBeGreaterThan(3);
        await store.set("p", pooled);
        const got = (await store.get("p"))!;
        expect(dec(got)).toBe("abc");
        expect(got.buffer.byteLength).toBe(3);
        const [m] = await store.getMany(["p"]);
        expect(m!.buffer.byteLength).toBe(3);
        // Same answers as the reference memory store.
        const mem = createMemoryStore();
        await mem.set("p", pooled);
        expect(Array.from((await mem.get("p"))!)).toEqual(Array.from(got));
      } finally {
        await store.close();
      }
    });
  });
}
