import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  KvCorruptError,
  KvPermissionError,
  KvStorageFullError,
  type KvStore,
  KvTimeoutError,
} from "@kvsession/kv";
import { requireService } from "@kvsession/kv-test-suite";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { createSqliteStore } from "../src/index.js";
import { tempDir } from "./helpers.js";

const repoRoot = join(import.meta.dirname, "..", "..", "..");
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const dir = tempDir("faults");
let n = 0;
const file = () => join(dir, `f${n++}.db`);

function integrity(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma("integrity_check", { simple: true }) as string;
  } finally {
    db.close();
  }
}

describe("kv-sqlite: bad files", () => {
  it("refuses a file that is not SQLite with KvCorruptError and leaves it untouched", () => {
    const path = file();
    const garbage = Buffer.alloc(8192, "this is not a database, just text. ");
    writeFileSync(path, garbage);
    let err: unknown;
    try {
      createSqliteStore({ path });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KvCorruptError);
    expect((err as Error).message).toMatch(/not a SQLite database/);
    expect(Buffer.compare(readFileSync(path), garbage)).toBe(0);
  });

  it("refuses a database whose header was overwritten, with KvCorruptError", async () => {
    const path = file();
    const s = createSqliteStore({ path });
    await s.set("k", enc("v"));
    await s.close();
    const bytes = readFileSync(path);
    bytes.write("garbage garbage!", 0);
    writeFileSync(path, bytes);
    expect(() => createSqliteStore({ path })).toThrow(KvCorruptError);
  });

  it("reads TEXT another program wrote into the value column as its UTF-8 bytes, and refuses a number", async () => {
    const db = new Database(file());
    const s = createSqliteStore({ database: db, sweepIntervalMs: false });
    const insert = db.prepare(
      "INSERT INTO kv (key, value, expires_at, epoch, gen) VALUES (?, ?, NULL, 1, 0)",
    );
    insert.run("text", "héllo ✓");
    const bytes = (v: unknown) => {
      expect(v).toBeInstanceOf(Uint8Array);
      return dec(v as Uint8Array);
    };
    expect(bytes(await s.get("text"))).toBe("héllo ✓");
    expect(bytes((await s.getEntry("text"))?.value)).toBe("héllo ✓");
    expect(bytes((await s.getMany(["text"]))[0])).toBe("héllo ✓");
    expect(bytes((await s.getVersioned("text")).value)).toBe("héllo ✓");
    expect(bytes((await s.listEntries()).entries[0]?.value)).toBe("héllo ✓");
    insert.run("number", 42);
    const err = await s.get("number").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvCorruptError);
    expect((err as Error).message).toMatch(/"number".*delete/);
    await expect(s.getVersioned("number")).rejects.toBeInstanceOf(KvCorruptError);
    await expect(s.listEntries()).rejects.toBeInstanceOf(KvCorruptError);
    expect(await s.delete("number")).toBe(true);
    await s.close();
    db.close();
  });

  it("says what to do when the directory does not exist", () => {
    expect(() => createSqliteStore({ path: join(dir, "missing", "x.db") })).toThrow(/create the directory/);
  });
});

describe("kv-sqlite: read-only", () => {
  it("opened with readonly: reads work, writes fail with KvPermissionError", async () => {
    const path = file();
    const w = createSqliteStore({ path });
    await w.set("k", enc("v"));
    await w.close();
    const r = createSqliteStore({ path, readonly: true });
    expect(dec(await r.get("k"))).toBe("v");
    await expect(r.set("k", enc("x"))).rejects.toBeInstanceOf(KvPermissionError);
    await expect(r.delete("k")).rejects.toBeInstanceOf(KvPermissionError);
    await expect(r.clear()).rejects.toBeInstanceOf(KvPermissionError);
    expect(dec(await r.get("k"))).toBe("v");
    await r.close();
  });

  it("refuses to open read-only a file it would have to create the table in", () => {
    const path = file();
    new Database(path).close();
    expect(() => createSqliteStore({ path, readonly: true })).toThrow(KvPermissionError);
  });

  // Root ignores file modes (chmod 444 does not stop it); an immutable file does stop root.
  const chattr = () => {
    const probe = join(dir, "chattr-probe");
    writeFileSync(probe, "x");
    execFileSync("chattr", ["+i", probe]);
    execFileSync("chattr", ["-i", probe]);
  };
  it("a file made immutable (chattr +i) behind its back: KvPermissionError on write, data intact", async (ctx) => {
    try {
      chattr();
    } catch {
      ctx.skip(); // not root, or a file system without the immutable flag
    }
    const path = file();
    const w = createSqliteStore({ path });
    await w.set("k", enc("v"));
    await w.close();
    execFileSync("chattr", ["+i", path]);
    try {
      const s = createSqliteStore({ path });
      expect(dec(await s.get("k"))).toBe("v");
      const err = await s.set("k2", enc("x")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KvPermissionError);
      expect((err as Error).message).toMatch(/read-only/);
      await s.close();
    } finally {
      execFileSync("chattr", ["-i", path]);
    }
    expect(integrity(path)).toBe("ok");
  });
});

describe("kv-sqlite: a locked database", () => {
  it("times out with KvTimeoutError while another connection holds the write lock, then recovers", async () => {
    const path = file();
    const s = createSqliteStore({ path, busyTimeoutMs: 50 });
    await s.set("before", enc("1"));
    const other = new Database(path);
    other.exec("BEGIN EXCLUSIVE");
    try {
      const err = await s.set("during", enc("2")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KvTimeoutError);
      expect((err as Error).message).toMatch(/busyTimeoutMs/);
      await expect(s.setMany([{ key: "m", value: enc("3") }])).rejects.toBeInstanceOf(KvTimeoutError);
      // WAL: readers are not blocked by a writer.
      expect(dec(await s.get("before"))).toBe("1");
    } finally {
      other.exec("COMMIT");
      other.close();
    }
    await s.set("after", enc("4"));
    expect((await s.getMany(["before", "during", "after"])).map(dec)).toEqual(["1", undefined, "4"]);
    await s.close();
  });
});

const mountPoint = join(dir, "tiny");
if (
  await requireService("a 2 MiB tmpfs mount (needs root)", async () => {
    mkdirSync(mountPoint, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint]);
  })
) {
  afterAll(() => execFileSync("umount", ["-l", mountPoint]));
  describe("kv-sqlite: a full disk", () => {
    it("fails with KvStorageFullError, keeps every acknowledged write, and recovers once space is freed", async () => {
      const path = join(mountPoint, "full.db");
      const filler = join(mountPoint, "filler");
      writeFileSync(filler, Buffer.alloc(512 * 1024));
      const s = createSqliteStore({ path });
      const value = new Uint8Array(20_000).fill(1);
      const acked: string[] = [];
      let err: unknown;
      for (let i = 0; i < 500 && err === undefined; i++) {
        try {
          await s.set(`k${i}`, value);
          acked.push(`k${i}`);
        } catch (e) {
          err = e;
        }
      }
      expect(err).toBeInstanceOf(KvStorageFullError);
      expect((err as Error).message).toMatch(/free space/);
      expect(acked.length).toBeGreaterThan(0);
      for (const k of acked) expect((await s.get(k))?.byteLength, k).toBe(value.byteLength);
      rmSync(filler);
      await s.set("after", enc("ok"));
      expect(dec(await s.get("after"))).toBe("ok");
      await s.close();
      expect(integrity(path)).toBe("ok");
      const again = createSqliteStore({ path });
      expect((await again.getMany(acked)).every((v) => v?.byteLength === value.byteLength)).toBe(true);
      await again.close();
    });
  });
}

describe("kv-sqlite: a process killed mid-write", () => {
  for (const durability of ["normal", "full"] as const) {
    it(`reopens intact with every acknowledged write (durability ${durability})`, async () => {
      const path = file();
      const child: ChildProcess = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "--conditions=@kvsession/source",
          join(import.meta.dirname, "fixtures", "crash-writer.ts"),
          path,
          durability,
          "100000",
        ],
        { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] },
      );
      const acked: string[] = [];
      let buf = "";
      await new Promise<void>((resolve, reject) => {
        child.on("error", reject);
        child.on("exit", () => resolve());
        child.stdout!.on("data", (chunk: Buffer) => {
          buf += chunk.toString();
          const lines = buf.split("\n");
          buf = lines.pop()!;
          acked.push(...lines);
          // Killed in the middle of the stream, well before it would finish on its own.
          if (acked.length >= 400 && child.exitCode === null) child.kill("SIGKILL");
        });
      });
      expect(child.signalCode).toBe("SIGKILL");
      expect(acked.length).toBeGreaterThanOrEqual(400);
      expect(integrity(path)).toBe("ok");
      const s: KvStore = createSqliteStore({ path });
      const got = await s.getMany(acked);
      const missing = acked.filter((_, i) => got[i] === undefined);
      expect(missing).toEqual([]);
      for (const k of acked.filter((k) => Number(k.slice(1)) % 10 === 0)) {
        expect(await s.has(`${k}:a`), `${k}:a`).toBe(true);
        expect(await s.has(`${k}:b`), `${k}:b`).toBe(true);
      }
      await s.close();
    });
  }
});
