import { join } from "node:path";
import { KvArgumentError } from "@kvsession/kv";
import Database from "better-sqlite3";
import { describe, expect, it, vi } from "vitest";
import { createSqliteStore } from "../src/index.js";
import { SCHEMA_VERSION } from "../src/schema.js";
import { tempDir } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const dir = tempDir("schema");
let n = 0;
const file = () => join(dir, `s${n++}.db`);

describe("kv-sqlite: schema and options", () => {
  it("opens in WAL mode, records the schema version, and leaves a given Database's pragmas alone", async () => {
    const path = file();
    const s = createSqliteStore({ path, durability: "full", table: "sessions" });
    await s.close();
    const db = new Database(path);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(
      db.prepare("SELECT schema_version FROM kvsession_meta WHERE table_name = 'sessions'").get(),
    ).toEqual({
      schema_version: SCHEMA_VERSION,
    });
    db.pragma("synchronous = OFF");
    const s2 = createSqliteStore({ database: db, table: "sessions", durability: "full" });
    expect(db.pragma("synchronous", { simple: true })).toBe(0);
    await s2.close();
    db.close();
  });

  it("refuses a table written by a newer version, and bad options", () => {
    const path = file();
    createSqliteStore({ path }).close();
    const db = new Database(path);
    db.prepare("UPDATE kvsession_meta SET schema_version = ? WHERE table_name = 'kv'").run(
      SCHEMA_VERSION + 1,
    );
    db.close();
    expect(() => createSqliteStore({ path })).toThrow(/newer than this/);
    expect(() => createSqliteStore({ path: file(), table: 'x"; DROP TABLE y; --' })).toThrow(KvArgumentError);
    expect(() => createSqliteStore({ path: file(), table: "kvsession_meta" })).toThrow(KvArgumentError);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    expect(() => createSqliteStore({ path: file(), durability: "fast" as any })).toThrow(KvArgumentError);
    expect(() => createSqliteStore({})).toThrow(KvArgumentError);
  });

  it("leaves a Database it was given open and keeps tables of one file apart", async () => {
    const db = new Database(file());
    const a = createSqliteStore({ database: db, table: "a" });
    const b = createSqliteStore({ database: db, table: "b" });
    await a.set("k", enc("A"));
    await b.set("k", enc("B"));
    await a.clear();
    expect(dec(await b.get("k"))).toBe("B");
    await a.close();
    await b.close();
    expect(db.open).toBe(true);
    db.close();
  });

  it("never hands out a version again after clear(), a sweep, or a re-created table", async () => {
    const path = file();
    const db = new Database(path);
    const s = createSqliteStore({ database: db, sweepIntervalMs: false });
    const seen = new Set<string>();
    const take = async () => {
      const { version } = await s.getVersioned("k");
      expect(seen.has(version!), version!).toBe(false);
      seen.add(version!);
    };
    await s.set("k", enc("1"));
    await take();
    await s.clear();
    await s.set("k", enc("2"));
    await take();
    await s.close();
    db.exec(`DROP TABLE kv`);
    const again = createSqliteStore({ database: db, sweepIntervalMs: false });
    await again.set("k", enc("3"));
    const { version } = await again.getVersioned("k");
    expect(seen.has(version!)).toBe(false);
    await again.close();
    db.close();
  });

  it("refuses a table name that differs only in case from an existing table, which SQLite would share", async () => {
    const path = file();
    const a = createSqliteStore({ path, table: "sessions", sweepIntervalMs: false });
    await a.set("k", enc("A"));
    for (const variant of ["Sessions", "SESSIONS", "sessionS"]) {
      expect(() => createSqliteStore({ path, table: variant }), variant).toThrow(KvArgumentError);
      expect(() => createSqliteStore({ path, table: variant }), variant).toThrow(/"sessions"/);
    }
    const ro = new Database(path, { readonly: true });
    expect(() => createSqliteStore({ database: ro, table: "Sessions" })).toThrow(KvArgumentError);
    ro.close();
    // The name it was created with still opens the same keys, and nothing was cleared or re-created.
    const same = createSqliteStore({ path, table: "sessions", sweepIntervalMs: false });
    expect(dec(await same.get("k"))).toBe("A");
    const before = await same.getVersioned("k");
    expect(await same.compareAndSet("k", before.version, enc("A2"))).toEqual(expect.any(String));
    await same.close();
    await a.close();
  });

  it("never hands out a version of a dropped table again when it is re-created under another case", async () => {
    const path = file();
    const db = new Database(path);
    const lower = createSqliteStore({ database: db, table: "sessions", sweepIntervalMs: false });
    await lower.set("k", enc("old"));
    const old = await lower.getVersioned("k");
    await lower.close();
    db.exec(`DROP TABLE sessions`);
    const upper = createSqliteStore({ database: db, table: "Sessions", sweepIntervalMs: false });
    await upper.set("k", enc("new"));
    expect((await upper.getVersioned("k")).version).not.toBe(old.version);
    expect(await upper.compareAndSet("k", old.version, enc("stale"))).toBe(false);
    expect(dec(await upper.get("k"))).toBe("new");
    await upper.close();
    db.close();
  });

  it("sweeps through the deadline index", () => {
    const db = new Database(file());
    createSqliteStore({ database: db, sweepIntervalMs: false }).close();
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN SELECT key FROM kv WHERE expires_at <= ? LIMIT ?`)
      .all(1, 1)
      .map((r) => (r as { detail: string }).detail)
      .join("\n");
    expect(plan).toMatch(/USING (COVERING )?INDEX kv_expires/);
    db.close();
  });

  it("reclaims an expired backlog a bounded batch per tick, and stops on close()", async () => {
    // The sweeper's timer is driven by hand, so each tick is seen alone however slow the machine.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const db = new Database(file());
      const s = createSqliteStore({ database: db, sweepBatch: 100, sweepIntervalMs: 20 });
      const insert = db.prepare(
        "INSERT INTO kv (key, value, expires_at, epoch, gen) VALUES (?, x'00', ?, 1, 0)",
      );
      const past = Date.now() - 1000;
      db.transaction(() => {
        for (let i = 0; i < 1000; i++) insert.run(`old${i}`, past);
      })();
      await s.set("keep", enc("v"), { ttl: 600_000 });
      const count = () => (db.prepare("SELECT count(*) AS c FROM kv").get() as { c: number }).c;
      const observed: number[] = [count()];
      await vi.advanceTimersByTimeAsync(20); // the first tick, after the interval
      observed.push(count());
      // A full batch brings the next tick soon after; the tick that finds less waits the interval again.
      for (let i = 0; i < 10; i++) {
        await vi.advanceTimersByTimeAsync(1);
        observed.push(count());
      }
      expect(observed).toEqual([1001, 901, 801, 701, 601, 501, 401, 301, 201, 101, 1, 1]);
      insert.run("later", past);
      await vi.advanceTimersByTimeAsync(1);
      expect(count()).toBe(2); // not swept yet: the last tick found less than a batch
      await vi.advanceTimersByTimeAsync(20);
      expect(count()).toBe(1);
      await s.close();
      insert.run("late", past);
      await vi.advanceTimersByTimeAsync(1000);
      expect(count()).toBe(2);
      db.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
