import { constants } from "node:buffer";
import { createMemoryStore, KvArgumentError, KvCorruptError, KvValueTooLargeError } from "@kvsession/kv";
import { requireService } from "@kvsession/kv-test-suite";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createPostgresStore, MAX_VALUE_BYTES } from "../src/index.js";
import { SCHEMA_VERSION } from "../src/schema.js";
import { DATABASE_URL, dropTable, probe, uniqueTable } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

if (await requireService(`PostgreSQL at ${DATABASE_URL}`, () => probe())) {
  describe("kv-postgres: schema, isolation and sweep", () => {
    const tables = ["race", "one", "two", "sweep", "shared", "case", "recreate", "retyped", "big"].map(
      uniqueTable,
    );
    const [race, one, two, sweep, shared, lowerCase, recreate, retyped, big] = tables as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    // Quoted identifiers keep their case in PostgreSQL: this is another table than lowerCase.
    const mixedCase = `K${lowerCase.slice(1)}`;
    tables.push(mixedCase);
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

    it("keeps tables whose names differ only in case apart (the driver quotes them, so PostgreSQL keeps their case)", async () => {
      const a = await createPostgresStore({ pool }, { table: lowerCase, sweepIntervalMs: false });
      const b = await createPostgresStore({ pool }, { table: mixedCase, sweepIntervalMs: false });
      try {
        await a.set("k", enc("lower"));
        await b.set("k", enc("mixed"));
        expect(dec(await a.get("k"))).toBe("lower");
        expect(dec(await b.get("k"))).toBe("mixed");
        await a.clear();
        expect(await a.get("k")).toBeUndefined();
        expect(dec(await b.get("k"))).toBe("mixed");
        const names = await pool.query<{ relname: string }>(
          "SELECT relname FROM pg_class WHERE relkind = 'r' AND lower(relname) = lower($1) ORDER BY relname",
          [lowerCase],
        );
        expect(names.rows.map((r) => r.relname)).toEqual([mixedCase, lowerCase]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("never hands out a version of a dropped table again when the table is re-created", async () => {
      const first = await createPostgresStore({ pool }, { table: recreate, sweepIntervalMs: false });
      await first.set("k", enc("old"));
      await first.set("other", enc("x"));
      const old = await first.getVersioned("k");
      await first.close();
      await pool.query(`DROP TABLE "${recreate}"`);
      const again = await createPostgresStore({ pool }, { table: recreate, sweepIntervalMs: false });
      try {
        await again.set("k", enc("new"));
        await again.set("other", enc("y"));
        const now = await again.getVersioned("k");
        expect(now.version).not.toBe(old.version);
        expect(await again.compareAndSet("k", old.version, enc("stale"))).toBe(false);
        expect(dec(await again.get("k"))).toBe("new");
      } finally {
        await again.close();
      }
    });

    it("reads a value column retyped to text as its UTF-8 bytes, and refuses one that holds no bytes", async () => {
      const w = await createPostgresStore({ pool }, { table: retyped, sweepIntervalMs: false });
      await w.setMany([
        { key: "t", value: enc("héllo ✓") },
        { key: "u", value: enc("second") },
      ]);
      await w.close();
      await pool.query(
        `ALTER TABLE "${retyped}" ALTER COLUMN value TYPE text USING convert_from(value, 'UTF8')`,
      );
      // A new pool: statements prepared against the old column type belong to the old connections.
      const r = await createPostgresStore({ connectionString: DATABASE_URL, max: 2 }, { table: retyped });
      try {
        const bytes = (v: unknown) => {
          expect(v).toBeInstanceOf(Uint8Array);
          return dec(v as Uint8Array);
        };
        expect(bytes(await r.get("t"))).toBe("héllo ✓");
        expect(bytes((await r.getEntry("t"))?.value)).toBe("héllo ✓");
        expect((await r.getMany(["t", "u"])).map(bytes)).toEqual(["héllo ✓", "second"]);
        expect(bytes((await r.getVersioned("t")).value)).toBe("héllo ✓");
        expect((await r.listEntries()).entries.map((e) => bytes(e.value))).toEqual(["héllo ✓", "second"]);
      } finally {
        await r.close();
      }
      await pool.query(`ALTER TABLE "${retyped}" ALTER COLUMN value TYPE integer USING length(value)`);
      const n = await createPostgresStore({ connectionString: DATABASE_URL, max: 2 }, { table: retyped });
      try {
        const err = await n.get("t").catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KvCorruptError);
        expect((err as Error).message).toMatch(/"t"/);
        await expect(n.getVersioned("t")).rejects.toBeInstanceOf(KvCorruptError);
      } finally {
        await n.close();
      }
    });

    it("refuses a maxValueBytes whose hex text would not fit a JS string, and a value one byte over the largest", async () => {
      // bytea comes back as "\\x" and two hex digits per byte, in one string. Reading a value of exactly
      // MAX_VALUE_BYTES back is in reliability/test/postgres-max-value.test.ts: it keeps the server busy.
      expect(MAX_VALUE_BYTES).toBe(Math.floor((constants.MAX_STRING_LENGTH - 2) / 2));
      for (const maxValueBytes of [256 * 1024 * 1024, MAX_VALUE_BYTES + 1])
        await expect(
          createPostgresStore({ pool }, { table: big, maxValueBytes, sweepIntervalMs: false }),
          String(maxValueBytes),
        ).rejects.toBeInstanceOf(KvArgumentError);
      const store = await createPostgresStore(
        { pool },
        { table: big, maxValueBytes: MAX_VALUE_BYTES, sweepIntervalMs: false },
      );
      try {
        expect(store.capabilities.maxValueBytes).toBe(MAX_VALUE_BYTES);
        await expect(store.set("over", new Uint8Array(MAX_VALUE_BYTES + 1))).rejects.toBeInstanceOf(
          KvValueTooLargeError,
        );
        expect(await store.has("over")).toBe(false);
      } finally {
        await store.close();
      }
    });

    it("refuses a listing cursor that could not be a key with KvArgumentError, not a server encoding error", async () => {
      const store = await createPostgresStore({ pool }, { table: one, sweepIntervalMs: false });
      try {
        await store.setMany(["a", "b"].map((key) => ({ key, value: enc(key) })));
        for (const cursor of ["a\u0000b", "\ud800"])
          await expect(store.listKeys({ cursor }), JSON.stringify(cursor)).rejects.toBeInstanceOf(
            KvArgumentError,
          );
        expect((await store.listKeys({ cursor: "a" })).keys).toEqual(["b"]);
      } finally {
        await store.clear();
        await store.close();
      }
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
