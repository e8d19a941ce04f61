import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, rmSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import {
  KvArgumentError,
  KvConnectionError,
  KvCorruptError,
  KvPermissionError,
  KvStorageFullError,
  KvTimeoutError,
} from "@kvsession/kv";
import { requireService } from "@kvsession/kv-test-suite";
import { afterAll, describe, expect, it } from "vitest";
import { encodeKey } from "../src/encoding.js";
import { holderLine, thisProcess } from "../src/locks.js";
import { createFsStore, fsDriver } from "../src/store.js";
import { tempDir } from "./helpers.js";

const repoRoot = join(import.meta.dirname, "..", "..", "..");
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const root = tempDir("faults");
let n = 0;
const fresh = () => join(root, `s${n++}`);

/** Every file under dir, as paths relative to it. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(relative(base, p));
  }
  return out;
}
const keyFiles = (dir: string) => walk(dir).filter((p) => p !== "kvsession-fs.json");

function child(args: string[]): ChildProcess {
  const node = [
    "--import",
    "tsx",
    "--conditions=@kvsession/source",
    join(import.meta.dirname, "fixtures", "child.ts"),
    ...args,
  ];
  return spawn(process.execPath, node, { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
}
function output(c: ChildProcess): Promise<{ out: string; code: number | null }> {
  let out = "";
  c.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve, reject) => {
    c.on("error", reject);
    c.on("exit", (code) => resolve({ out, code }));
  });
}

describe("kv-fs: file names", () => {
  it("keeps traversal, separators and very long keys inside the directory, reversibly", async () => {
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false });
    const long = "é".repeat(512); // 1024 UTF-8 bytes -> 3072 encoded characters, split into segments
    const keys = [
      "../x",
      "../../etc/passwd",
      "/abs",
      "a\\b",
      "..",
      ".",
      "CON",
      "A",
      "a",
      long,
      `${long.slice(0, 400)}z`,
    ];
    for (const k of keys) await s.set(k, enc(k.slice(0, 8)));
    for (const k of keys) expect(dec(await s.get(k)), k).toBe(k.slice(0, 8));
    // Nothing escaped the store's directory.
    for (const d of [root, join(root, ".."), join(dir, "..")])
      for (const name of ["x", "abs", "etc", "passwd"]) expect(readdirSync(d), d).not.toContain(name);
    for (const f of keyFiles(dir)) {
      for (const seg of f.split("/")) expect(Buffer.byteLength(seg)).toBeLessThanOrEqual(255);
      expect(f).toMatch(/^[0-9a-f]{3}\/[A-Za-z0-9_%+/-]+$/);
    }
    const listed: string[] = [];
    for await (const k of s.keys()) listed.push(k);
    expect(listed.sort()).toEqual([...keys].sort());
    expect(encodeKey("../A b")).toBe("%2E%2E%2F%41%20b");
    for (const k of keys) expect(await s.delete(k)).toBe(true);
    expect(keyFiles(dir)).toEqual([]);
    const dirs = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .flatMap((e) => [e.name, ...dirs(join(d, e.name)).map((x) => `${e.name}/${x}`)]);
    expect(dirs(dir).filter((d) => d.includes("+"))).toEqual([]); // no segment directory left behind
    await s.close();
  });

  it("refuses a non-empty directory that is not a kv-fs store, and a newer format", () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(join(dir, "important.txt"), "mine");
    expect(() => createFsStore({ dir })).toThrow(KvArgumentError);
    const other = fresh();
    createFsStore({ dir: other, sweepIntervalMs: false });
    writeFileSync(join(other, "kvsession-fs.json"), '{"format":2}');
    expect(() => createFsStore({ dir: other })).toThrow(/format 2/);
  });
});

describe("kv-fs: damaged and vanished files", () => {
  it("reports a truncated or foreign value file as KvCorruptError; other keys are unaffected", async () => {
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false });
    await s.setMany([
      { key: "bad", value: enc("a value long enough") },
      { key: "good", value: enc("fine") },
      { key: "junk", value: enc("x") },
    ]);
    const fileOf = (k: string) => join(dir, keyFiles(dir).find((f) => f.endsWith(`/${k}`))!);
    truncateSync(fileOf("bad"), 45);
    writeFileSync(fileOf("junk"), "not a kv-fs file at all");
    const err = await s.get("bad").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvCorruptError);
    expect((err as Error).message).toMatch(/delete that file/);
    await expect(s.get("junk")).rejects.toBeInstanceOf(KvCorruptError);
    await expect(s.setIfAbsent("bad", enc("x"))).rejects.toBeInstanceOf(KvCorruptError);
    expect(dec(await s.get("good"))).toBe("fine");
    const listed: string[] = [];
    for await (const k of s.keys()) listed.push(k);
    expect(listed).toEqual(["good"]);
    // A damaged file can be overwritten or deleted.
    await s.set("bad", enc("repaired"));
    expect(dec(await s.get("bad"))).toBe("repaired");
    expect(await s.delete("junk")).toBe(true);
    await s.close();
  });

  it("skips files whose names kv-fs never writes (%FF, a needless escape, NUL) in listing, clear() and the sweep", async () => {
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false });
    await s.set("a", enc("1"));
    const shard = join(dir, keyFiles(dir)[0]!.split("/")[0]!);
    // "%FF" is no UTF-8; "%61" spells "a" the long way; "%00" would be a NUL key.
    const foreign = ["%FF", "%61", "%00", "%E2%82"];
    for (const name of foreign) writeFileSync(join(shard, name), "not written by kv-fs");
    expect((await s.listKeys()).keys).toEqual(["a"]);
    expect((await s.listKeys({ prefix: "a" })).keys).toEqual(["a"]);
    expect((await s.listEntries()).entries.map((e) => e.key)).toEqual(["a"]);
    const d = fsDriver(dir, { dir, durability: "normal", maxValueBytes: 1024, sweepIntervalMs: false });
    expect(await d.sweep(10, Date.now() + 60_000)).toBe(0);
    await d.close?.();
    await s.clear();
    expect((await s.listKeys()).keys).toEqual([]);
    expect(readdirSync(shard).sort()).toEqual([...foreign].sort());
    await s.close();
  });

  it("treats a file, a shard or a segment directory removed behind its back as absent, and writes again", async () => {
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false });
    const long = "k".repeat(700);
    await s.setMany([
      { key: "a", value: enc("1") },
      { key: long, value: enc("2") },
    ]);
    for (const f of keyFiles(dir)) rmSync(join(dir, f.split("/")[0]!), { recursive: true, force: true });
    expect(await s.get("a")).toBeUndefined();
    expect(await s.has(long)).toBe(false);
    expect(await s.delete("a")).toBe(false);
    expect((await s.listKeys()).keys).toEqual([]);
    await s.set(long, enc("again"));
    expect(dec(await s.get(long))).toBe("again");
    await s.close();
  });

  it("fails with KvConnectionError when the whole directory is gone, and recovers when it is back", async () => {
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false });
    await s.set("a", enc("1"));
    rmSync(dir, { recursive: true });
    const err = await s.set("b", enc("2")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvConnectionError);
    expect((err as Error).message).toMatch(/recreate/);
    expect(await s.get("a")).toBeUndefined();
    mkdirSync(dir);
    await s.set("b", enc("2"));
    expect(dec(await s.get("b"))).toBe("2");
    await s.close();
  });
});

describe("kv-fs: permission denied", () => {
  it("a read-only mount: reads work, writes fail with KvPermissionError, nothing changes", async (ctx) => {
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false });
    await s.set("k", enc("v"));
    await s.close();
    const ro = `${dir}-ro`;
    mkdirSync(ro);
    try {
      execFileSync("mount", ["--bind", dir, ro], { stdio: "ignore" });
      execFileSync("mount", ["-o", "remount,ro,bind", ro], { stdio: "ignore" });
    } catch {
      ctx.skip(); // not root: the unprivileged test below covers EACCES
    }
    try {
      const r = createFsStore({ dir: ro, sweepIntervalMs: false });
      expect(dec(await r.get("k"))).toBe("v");
      const err = await r.set("k", enc("new")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KvPermissionError);
      expect((err as Error).message).toMatch(/read and write access|read-write/);
      await expect(r.delete("k")).rejects.toBeInstanceOf(KvPermissionError);
      await expect(r.set("other", enc("x"))).rejects.toBeInstanceOf(KvPermissionError);
      expect(dec(await r.get("k"))).toBe("v");
      await r.close();
    } finally {
      execFileSync("umount", [ro]);
    }
    expect(keyFiles(dir).filter((f) => !/\/k$/.test(f))).toEqual([]);
  });

  it("an unprivileged process on a directory it may not write: KvPermissionError (EACCES)", async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip(); // needs root to drop privileges
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false });
    await s.set("k", enc("v"));
    await s.close();
    chmodSync(root, 0o755);
    const { out, code } = await output(child(["try-write", dir, "65534"]));
    expect(code).toBe(0);
    const res = JSON.parse(out) as { get: string; set: string };
    expect(res.get).toBe("v");
    expect(res.set).toMatch(/^KvPermissionError: .*EACCES/);
  });
});

const tiny = join(root, "tiny");
if (
  await requireService("a 2 MiB tmpfs mount (needs root)", async () => {
    mkdirSync(tiny, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", tiny]);
  })
) {
  afterAll(() => execFileSync("umount", ["-l", tiny]));
  describe("kv-fs: a full disk", () => {
    it("fails with KvStorageFullError, keeps the old value and leaves no temp file, then recovers", async () => {
      const dir = join(tiny, "store");
      const s = createFsStore({ dir, sweepIntervalMs: false });
      await s.set("keep", enc("old"));
      const value = new Uint8Array(100_000).fill(3);
      const acked: string[] = [];
      let err: unknown;
      for (let i = 0; i < 100 && err === undefined; i++) {
        await s.set(`k${i}`, value).then(
          () => acked.push(`k${i}`),
          (e: unknown) => {
            err = e;
          },
        );
      }
      expect(err).toBeInstanceOf(KvStorageFullError);
      expect((err as Error).message).toMatch(/free space/);
      await expect(s.set("keep", new Uint8Array(500_000))).rejects.toBeInstanceOf(KvStorageFullError);
      expect(dec(await s.get("keep"))).toBe("old");
      for (const k of acked) expect((await s.get(k))?.byteLength, k).toBe(value.byteLength);
      expect(walk(dir).filter((f) => f.endsWith(".tmp") || f.endsWith(".lock"))).toEqual([]);
      await s.deleteMany(acked.slice(0, 5));
      await s.set("after", enc("ok"));
      expect(dec(await s.get("after"))).toBe("ok");
      await s.close();
    });
  });
}

describe("kv-fs: several processes", () => {
  it("compare-and-set loses no increment across 3 processes", async () => {
    const dir = fresh();
    createFsStore({ dir, sweepIntervalMs: false });
    const runs = await Promise.all([1, 2, 3].map(() => output(child(["increment", dir, "40"]))));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
    const s = createFsStore({ dir, sweepIntervalMs: false });
    expect(dec(await s.get("counter"))).toBe("120");
    expect(walk(dir).filter((f) => f.endsWith(".lock"))).toEqual([]);
    await s.close();
  });

  it("setIfAbsent has exactly one winner per key across 3 processes", async () => {
    const dir = fresh();
    createFsStore({ dir, sweepIntervalMs: false });
    const runs = await Promise.all([1, 2, 3].map(() => output(child(["claim", dir, "200"]))));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
    const won = runs.flatMap((r) => JSON.parse(r.out) as string[]);
    expect(won.length).toBe(200);
    expect(new Set(won).size).toBe(200);
  });

  it("recovers a lock left by a killed process, and times out on a live one with a clear message", async () => {
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false, lockTimeoutMs: 100 });
    await s.set("k", enc("1"));
    const lockOf = join(dir, `${keyFiles(dir)[0]!}.lock`);
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => dead.on("exit", r));
    writeFileSync(lockOf, holderLine({ ...thisProcess(), pid: dead.pid!, start: undefined }, "feedface"));
    await s.set("k", enc("2"));
    expect(dec(await s.get("k"))).toBe("2");
    writeFileSync(lockOf, `1 some-other-host feedface`);
    const err = await s.set("k", enc("3")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvTimeoutError);
    expect((err as Error).message).toMatch(/some-other-host.*delete the file/);
    expect(dec(await s.get("k"))).toBe("2");
    rmSync(lockOf);
    await s.close();
  });

  it("recovers an empty lock file left by a process killed between creating it and writing its token", async () => {
    const dir = fresh();
    const s = createFsStore({ dir, sweepIntervalMs: false, lockTimeoutMs: 300 });
    await s.set("k", enc("1"));
    const lockOf = join(dir, `${keyFiles(dir)[0]!}.lock`);
    // Fresh and empty: its creator may be about to write its token, so it is waited for.
    writeFileSync(lockOf, "");
    const soon = new Date(Date.now() + 60_000); // fresh however long this test takes
    utimesSync(lockOf, soon, soon);
    expect(await s.set("k", enc("2")).catch((e: unknown) => e)).toBeInstanceOf(KvTimeoutError);
    // Empty for seconds: nobody is about to write it.
    const old = new Date(Date.now() - 10_000);
    utimesSync(lockOf, old, old);
    await s.set("k", enc("3"));
    expect(dec(await s.get("k"))).toBe("3");
    expect(walk(dir).filter((f) => f.endsWith(".lock") || f.endsWith(".stale"))).toEqual([]);
    await s.close();
  });

  it("a process killed mid-stream of writes leaves every acknowledged key intact and no torn file", async () => {
    const dir = fresh();
    createFsStore({ dir, sweepIntervalMs: false });
    const c = child(["write", dir, "100000"]);
    const acked: string[] = [];
    let buf = "";
    await new Promise<void>((resolve, reject) => {
      c.on("error", reject);
      c.on("exit", () => resolve());
      c.stdout!.on("data", (chunk: Buffer) => {
        buf += chunk.toString();
        const lines = buf.split("\n");
        buf = lines.pop()!;
        acked.push(...lines);
        if (acked.length >= 300 && c.exitCode === null) c.kill("SIGKILL");
      });
    });
    expect(c.signalCode).toBe("SIGKILL");
    const s = createFsStore({ dir, sweepIntervalMs: false });
    const got = await s.getMany(acked);
    expect(acked.filter((_, i) => got[i]?.byteLength !== 3000)).toEqual([]);
    // Every key file that exists decodes (no torn value); a leftover temp file is not a key.
    let listed = 0;
    for await (const e of s.entries()) {
      expect(e.value.byteLength).toBe(3000);
      listed++;
    }
    expect(listed).toBeGreaterThanOrEqual(acked.length);
    await s.close();
  });
});

describe("kv-fs: the sweep", () => {
  // Expired files are written through the driver with a deadline already past: no waiting on the clock.
  const driverOf = (dir: string) =>
    fsDriver(dir, { dir, durability: "normal", maxValueBytes: 1024, sweepIntervalMs: false });
  const writeExpired = async (dir: string, keys: string[]) => {
    const d = driverOf(dir);
    const past = Date.now() - 1000;
    for (const key of keys) await d.set(key, enc("x"), past);
    await d.close?.();
  };
  const expiredStore = async (count: number) => {
    const dir = fresh();
    const w = createFsStore({ dir, sweepIntervalMs: false });
    await w.set("keep", enc("v"));
    await w.close();
    await writeExpired(
      dir,
      Array.from({ length: count }, (_, i) => `old${i}`),
    );
    return dir;
  };
  const count = (dir: string) => keyFiles(dir).filter((f) => !f.endsWith(".lock")).length;

  it("deletes at most one batch of expired files per tick and never a live one", async () => {
    const dir = await expiredStore(400);
    const d = driverOf(dir);
    expect(count(dir)).toBe(401);
    expect(await d.sweep(50, Date.now())).toBe(50);
    expect(count(dir)).toBe(351);
    let total = 50;
    for (let i = 0; i < 100 && total < 400; i++) total += await d.sweep(50, Date.now());
    expect(total).toBe(400);
    expect(count(dir)).toBe(1);
    expect(await d.sweep(50, Date.now())).toBe(0);
    await d.close?.();
  });

  it("runs in the background until the backlog is gone, and stops on close()", async () => {
    const dir = await expiredStore(200);
    const s = createFsStore({ dir, sweepBatch: 50, sweepIntervalMs: 20 });
    for (let i = 0; i < 500 && count(dir) > 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(count(dir)).toBe(1);
    await s.close();
    await writeExpired(dir, ["late"]);
    await new Promise((r) => setTimeout(r, 100));
    expect(count(dir)).toBe(2); // nobody swept after close()
  });
});
