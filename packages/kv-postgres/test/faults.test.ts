import {
  KvArgumentError,
  KvConnectionError,
  KvError,
  KvTimeoutError,
  KvValueTooLargeError,
} from "@kvsession/kv";
import { requireService } from "@kvsession/kv-test-suite";
import { type PrivateServer, pgBinDir, startPrivateServer, waitFor } from "@kvsession/test-helpers";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresStore } from "../src/index.js";
import { DATABASE_URL, dropTable, probe, uniqueTable } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

if (
  await requireService(
    "PostgreSQL server binaries (initdb, pg_ctl)",
    async () => pgBinDir() ?? Promise.reject(new Error("not installed")),
  )
) {
  describe("kv-postgres: the server restarts under the store", () => {
    let server: PrivateServer;
    beforeAll(async () => {
      server = await startPrivateServer();
    });
    afterAll(async () => {
      await server?.destroy();
    });

    it("fails to open with KvConnectionError when the server is down", async () => {
      await server.stop();
      try {
        const err = await createPostgresStore({ connectionString: server.url }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KvConnectionError);
        expect((err as Error).message).toMatch(/retry once PostgreSQL is back/);
      } finally {
        await server.start();
      }
    });

    it("gives typed errors while down and works again through the same store once back", async () => {
      const store = await createPostgresStore({ connectionString: server.url, max: 4 }, { table: "restart" });
      try {
        await store.set("before", enc("kept"));
        await server.stop("immediate");
        const failures = await Promise.all([
          store.get("before").catch((e: unknown) => e),
          store.set("x", enc("y")).catch((e: unknown) => e),
          store.listKeys().catch((e: unknown) => e),
          store.getMany(["before"]).catch((e: unknown) => e),
        ]);
        for (const f of failures) expect(f).toBeInstanceOf(KvConnectionError);
        await server.start();
        expect(dec(await store.get("before"))).toBe("kept");
        await store.set("after", enc("ok"));
        expect(dec(await store.get("after"))).toBe("ok");
      } finally {
        await store.close();
      }
    });

    it("gives KvTimeoutError within query_timeout when the server hangs, and recovers when it resumes", async () => {
      const store = await createPostgresStore(
        { connectionString: server.url, max: 2, query_timeout: 500 },
        { table: "hang", sweepIntervalMs: false },
      );
      // Only the frozen server's answer must time out: the others are retried, so a slow machine cannot fail them.
      try {
        await waitFor("the first write", 10_000, () => store.set("k", enc("v")).then(() => true));
        await server.freeze(true);
        try {
          const err = await store.get("k").catch((e: unknown) => e);
          expect(err).toBeInstanceOf(KvTimeoutError);
        } finally {
          await server.freeze(false);
        }
        expect(dec(await waitFor("an answer once resumed", 10_000, () => store.get("k")))).toBe("v");
      } finally {
        await store.close();
      }
    });

    it("loses no acknowledged write when the server dies in the middle of a stream of writes", async () => {
      const store = await createPostgresStore({ connectionString: server.url, max: 4 }, { table: "stream" });
      const acked: string[] = [];
      const errors: unknown[] = [];
      let stopped = false;
      try {
        // A bounded stream: 4 writers, at most 400 writes each, racing the server's death.
        const writer = async (w: number) => {
          for (let i = 0; i < 400; i++) {
            const key = `w${w}:${i}`;
            try {
              await store.set(key, enc(key));
              acked.push(key);
            } catch (e) {
              errors.push(e);
              if (stopped) return;
            }
          }
        };
        const writers = Promise.all([0, 1, 2, 3].map(writer));
        while (acked.length < 50) await new Promise((r) => setTimeout(r, 5));
        await server.stop("immediate");
        stopped = true;
        await writers;
        expect(errors.length).toBeGreaterThan(0);
        for (const e of errors) {
          expect(e).toBeInstanceOf(KvError);
          expect((e as KvError).code).toBe("KV_CONNECTION");
        }
        await server.start();
        const got = await store.getMany(acked);
        expect(got.map(dec)).toEqual(acked);
      } finally {
        await store.close();
      }
    });
  });
}

if (await requireService(`PostgreSQL at ${DATABASE_URL}`, () => probe())) {
  describe("kv-postgres: faults on the shared server", () => {
    const table = uniqueTable("faults");
    afterAll(() => dropTable(table));

    it("maps a statement timeout (a row locked by a long transaction) to KvTimeoutError, then recovers", async () => {
      const store = await createPostgresStore(
        { connectionString: DATABASE_URL, statement_timeout: 300 },
        { table, sweepIntervalMs: false },
      );
      const locker = new pg.Client({ connectionString: DATABASE_URL });
      await locker.connect();
      try {
        await store.set("locked", enc("v1"));
        await locker.query("BEGIN");
        await locker.query(`SELECT 1 FROM "${table}" WHERE key = 'locked' FOR UPDATE`);
        const err = await store.set("locked", enc("v2")).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KvTimeoutError);
        expect((err as Error).message).toMatch(/statement_timeout/);
        await locker.query("ROLLBACK");
        await store.set("locked", enc("v3"));
        expect(dec(await store.get("locked"))).toBe("v3");
      } finally {
        await locker.end();
        await store.close();
      }
    });

    it("opens under a short statement_timeout while another server's migration holds the lock past it", async () => {
      const other = new pg.Client({ connectionString: DATABASE_URL });
      await other.connect();
      const watcher = new pg.Client({ connectionString: DATABASE_URL });
      await watcher.connect();
      const startup = uniqueTable("startup");
      try {
        await other.query("BEGIN");
        await other.query("SELECT pg_advisory_xact_lock(hashtext('kvsession:migrate'))");
        const opening = createPostgresStore(
          { connectionString: DATABASE_URL, statement_timeout: 300 },
          { table: startup, sweepIntervalMs: false },
        ).then(
          (store) => ({ store }),
          (error: unknown) => ({ error }),
        );
        // Held past the timeout from the moment the opening store is seen waiting for it.
        await waitFor("the opening store waiting for the lock", 10_000, async () => {
          const r = await watcher.query(
            "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
          );
          return r.rows[0].n > 0 ? true : undefined;
        });
        await new Promise((r) => setTimeout(r, 600));
        await other.query("COMMIT");
        const opened = await opening;
        expect("error" in opened ? opened.error : undefined).toBeUndefined();
        if ("store" in opened) {
          await opened.store.set("k", enc("v"));
          expect(dec(await opened.store.get("k"))).toBe("v");
          await opened.store.close();
        }
      } finally {
        await other.end();
        await watcher.end();
        await dropTable(startup);
      }
    });

    it("maps pg_sleep past statement_timeout to KvTimeoutError through the error mapper", async () => {
      const { toKvError } = await import("../src/errors.js");
      const pool = new pg.Pool({ connectionString: DATABASE_URL, statement_timeout: 100, max: 1 });
      try {
        const err = await pool.query("SELECT pg_sleep(5)").catch((e: unknown) => toKvError(e, "test"));
        expect(err).toBeInstanceOf(KvTimeoutError);
      } finally {
        await pool.end();
      }
    });

    it("refuses a too-large value before sending it and keeps the old one", async () => {
      const store = await createPostgresStore(
        { connectionString: DATABASE_URL },
        { table, maxValueBytes: 1024, sweepIntervalMs: false },
      );
      try {
        expect(store.capabilities.maxValueBytes).toBe(1024);
        await store.set("big", enc("old"));
        await expect(store.set("big", new Uint8Array(1025))).rejects.toBeInstanceOf(KvValueTooLargeError);
        await expect(store.setMany([{ key: "big", value: new Uint8Array(1025) }])).rejects.toBeInstanceOf(
          KvValueTooLargeError,
        );
        await store.set("big", new Uint8Array(1024));
        expect((await store.get("big"))?.byteLength).toBe(1024);
      } finally {
        await store.close();
      }
      await expect(
        createPostgresStore({ connectionString: DATABASE_URL }, { table, maxValueBytes: 257 * 1024 * 1024 }),
      ).rejects.toBeInstanceOf(KvArgumentError);
    });

    it("refuses a table name that is not a plain identifier", async () => {
      for (const bad of ['kv"; DROP TABLE x; --', "1kv", "", "a".repeat(60)]) {
        await expect(
          createPostgresStore({ connectionString: DATABASE_URL }, { table: bad }),
        ).rejects.toBeInstanceOf(KvArgumentError);
      }
    });
  });
}
