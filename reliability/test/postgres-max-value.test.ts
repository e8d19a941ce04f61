import { KvValueTooLargeError } from "@kvsession/kv";
import { createPostgresStore, MAX_VALUE_BYTES } from "@kvsession/kv-postgres";
import { requireService } from "@kvsession/kv-test-suite";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASE_URL } from "../src/drivers.js";

/**
 * kv-postgres at its largest value. `bytea` comes back as hex text in one JS string, decoded inside
 * pg's socket handler, so a value whose text is longer than a string can be was once written fine
 * and then ended the process on read. The largest `maxValueBytes` must read back whole, and one byte
 * more must be refused before anything is sent. Moving a value this size through the server keeps it
 * busy long enough to upset timing-sensitive tests beside it: it runs here, one file at a time.
 */
const probe = async () => {
  const c = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
};

if (await requireService(`PostgreSQL at ${DATABASE_URL}`, probe)) {
  describe("kv-postgres at MAX_VALUE_BYTES", () => {
    const table = `rel_maxvalue_${process.pid}`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    pool.on("error", () => {});
    afterAll(async () => {
      await pool.query(`DROP TABLE IF EXISTS "${table}"`);
      await pool.query("DELETE FROM kvsession_meta WHERE table_name = $1", [table]).catch(() => {});
      await pool.end();
    });

    it("reads a value of exactly MAX_VALUE_BYTES back whole, and refuses one byte more before sending it", async () => {
      const store = await createPostgresStore(
        { pool },
        { table, maxValueBytes: MAX_VALUE_BYTES, sweepIntervalMs: false },
      );
      try {
        await expect(store.set("over", new Uint8Array(MAX_VALUE_BYTES + 1))).rejects.toBeInstanceOf(
          KvValueTooLargeError,
        );
        expect(await store.has("over")).toBe(false);
        // Zeros compress, so the server stores little; markers at both ends catch a shifted or cut read.
        const value = new Uint8Array(MAX_VALUE_BYTES);
        value.set([1, 2, 3], 0);
        value.set([7, 8, 9], MAX_VALUE_BYTES - 3);
        await store.set("max", value);
        const got = (await store.get("max"))!;
        expect(got.byteLength).toBe(MAX_VALUE_BYTES);
        expect(
          Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(value.buffer)),
        ).toBe(0);
      } finally {
        await store.close();
      }
    }, 600_000);
  });
}
