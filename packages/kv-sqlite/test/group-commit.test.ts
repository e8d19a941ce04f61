import { join } from "node:path";
import { KvDriverError, KvTimeoutError } from "@kvsession/kv";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createSqliteStore } from "../src/index.js";
import { tempDir } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const dir = tempDir("group");
let n = 0;
const file = () => join(dir, `g${n++}.db`);

describe("kv-sqlite: writes of one tick share a transaction", () => {
  it("commits them after the tick, together, in the order they were issued", async () => {
    const db = new Database(file());
    const s = createSqliteStore({ database: db, sweepIntervalMs: false });
    // A reader on another connection sees none of the group before the tick ends, then all of it.
    const reader = new Database(db.name, { readonly: true });
    const count = () => (reader.prepare("SELECT count(*) AS c FROM kv").get() as { c: number }).c;
    const before = count();
    const writes = Array.from({ length: 64 }, (_, i) => s.set(`k${i}`, enc(`v${i}`)));
    const a = s.set("dup", enc("first"));
    const b = s.set("dup", enc("second"));
    expect(count()).toBe(before); // nothing committed yet: the group is still queued
    await Promise.all([...writes, a, b]);
    expect(count()).toBe(before + 65);
    reader.close();
    expect((await s.getMany(["k0", "k63", "dup"])).map(dec)).toEqual(["v0", "v63", "second"]);
    await s.close();
    db.close();
  });

  it("keeps read-your-writes and ordering with every other operation", async () => {
    const s = createSqliteStore({ path: file(), sweepIntervalMs: false });
    const p1 = s.set("k", enc("1"));
    const del = s.delete("k"); // issued after the set: must see it
    await p1;
    expect(await del).toBe(true);
    expect(await s.get("k")).toBeUndefined();
    const p2 = s.set("k", enc("2"));
    expect(dec(await s.get("k"))).toBe("2"); // a read flushes pending writes first
    await p2;
    const buf = enc("abc");
    const p3 = s.set("m", buf);
    buf[0] = 0x7a; // mutated before the commit: the queued copy is unaffected
    await p3;
    expect(dec(await s.get("m"))).toBe("abc");
    await s.close();
  });

  it("fails only the write that failed, not the rest of its group", async () => {
    const db = new Database(file());
    const s = createSqliteStore({ database: db, sweepIntervalMs: false });
    db.exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON kv WHEN NEW.key = 'bad'
             BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END`);
    const results = await Promise.allSettled([
      s.set("a", enc("1")),
      s.set("bad", enc("2")),
      s.set("c", enc("3")),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(KvDriverError);
    expect((await s.getMany(["a", "bad", "c"])).map(dec)).toEqual(["1", undefined, "3"]);
    await s.close();
    db.close();
  });

  it("fails the whole group with KvTimeoutError while the database is locked, and writes none of it", async () => {
    const path = file();
    const s = createSqliteStore({ path, busyTimeoutMs: 30, sweepIntervalMs: false });
    const other = new Database(path);
    other.exec("BEGIN EXCLUSIVE");
    const results = await Promise.allSettled([s.set("x", enc("1")), s.set("y", enc("2"))]);
    other.exec("COMMIT");
    other.close();
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(KvTimeoutError);
    expect(await s.getMany(["x", "y"])).toEqual([undefined, undefined]);
    await s.close();
  });
});
