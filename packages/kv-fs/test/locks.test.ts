import { spawn } from "node:child_process";
import { readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { KvTimeoutError } from "@kvsession/kv";
import { describe, expect, it } from "vitest";
import { createFsStore } from "../src/index.js";
import { holderLine, refreshHeld, thisProcess, withLock } from "../src/locks.js";
import { tempDir } from "./helpers.js";

const here = dirname(fileURLToPath(import.meta.url));
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const root = tempDir("locks");
let n = 0;
const fresh = () => join(root, `s${n++}`);

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(relative(base, p));
  }
  return out;
}
const leftLocks = (dir: string) => walk(dir).filter((f) => f.endsWith(".lock") || f.endsWith(".stale"));

/** Runs the thread fixture in `count` worker threads of this process, each with its own copy of kv-fs. */
async function inThreads<T>(count: number, data: (i: number) => Record<string, unknown>): Promise<T[]> {
  const fixture = join(here, "fixtures", "thread.ts");
  // Each thread registers the TypeScript loader itself: a worker does not inherit the test runner's.
  const boot = `import { register } from "tsx/esm/api"; register(); await import(${JSON.stringify(
    `file://${fixture}`,
  )});`;
  return Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<T>((resolve, reject) => {
          const w = new Worker(boot, {
            eval: true,
            workerData: data(i),
            execArgv: ["--conditions=@kvsession/source"],
          });
          let result: T | undefined;
          w.on("message", (m: T) => {
            result = m;
          });
          w.on("error", reject);
          w.on("exit", (code) =>
            code === 0 && result !== undefined
              ? resolve(result)
              : reject(new Error(`thread ${i} exited with ${code}`)),
          );
        }),
    ),
  );
}

/** A store with one key written, and the path of that key's lock file. */
async function storeWithLock(lockTimeoutMs: number) {
  const dir = fresh();
  const s = createFsStore({ dir, sweepIntervalMs: false, lockTimeoutMs });
  await s.set("k", enc("1"));
  const file = walk(dir).find((f) => f !== "kvsession-fs.json")!;
  return { dir, s, lock: join(dir, `${file}.lock`) };
}
const backdate = (path: string, ms: number) => {
  const t = new Date(Date.now() - ms);
  utimesSync(path, t, t);
};

describe("kv-fs: locks between worker threads of one process", () => {
  it("compare-and-set loses no increment across 3 threads", async () => {
    const dir = fresh();
    createFsStore({ dir, sweepIntervalMs: false });
    const runs = await inThreads<{ wins: number }>(3, (i) => ({
      dir,
      mode: "increment",
      n: 200,
      id: `t${i}`,
    }));
    expect(runs.reduce((a, r) => a + r.wins, 0)).toBe(600);
    const s = createFsStore({ dir, sweepIntervalMs: false });
    expect(dec(await s.get("counter"))).toBe("600");
    expect(leftLocks(dir)).toEqual([]);
    await s.close();
  });

  it("setIfAbsent has exactly one winner per key across 3 threads", async () => {
    const dir = fresh();
    createFsStore({ dir, sweepIntervalMs: false });
    const keys = Array.from({ length: 300 }, (_, i) => `key${i}`);
    const runs = await inThreads<{ won: string[] }>(3, (i) => ({ dir, mode: "claim", keys, id: `t${i}` }));
    const won = runs.flatMap((r) => r.won);
    expect(won.length).toBe(keys.length);
    expect(new Set(won).size).toBe(keys.length);
    const s = createFsStore({ dir, sweepIntervalMs: false });
    // Each key holds the value of the one thread that was told it won.
    const owners = await s.getMany(keys);
    runs.forEach((r, i) => {
      for (const k of r.won) expect(dec(owners[keys.indexOf(k)]), k).toBe(`t${i}`);
    });
    await s.close();
  });
});

describe("kv-fs: who holds a lock", () => {
  const me = thisProcess();

  it("waits for a fresh lock of another holder in this very process (another thread's copy of kv-fs)", async () => {
    const { s, lock } = await storeWithLock(100);
    writeFileSync(lock, holderLine(me, "another-thread-token"));
    expect(await s.set("k", enc("2")).catch((e: unknown) => e)).toBeInstanceOf(KvTimeoutError);
    expect(dec(await s.get("k"))).toBe("1");
    // A thread terminated while holding it never refreshes it: once old, it is recovered.
    backdate(lock, 10 * 60_000);
    await s.set("k", enc("3"));
    expect(dec(await s.get("k"))).toBe("3");
    await s.close();
  });

  it("waits for a fresh lock of a process with our pid in another pid namespace, and recovers it once old", async () => {
    const { s, lock } = await storeWithLock(100);
    writeFileSync(lock, holderLine({ ...me, ns: "4026530000" }, "other-container"));
    expect(await s.set("k", enc("2")).catch((e: unknown) => e)).toBeInstanceOf(KvTimeoutError);
    backdate(lock, 10 * 60_000);
    await s.set("k", enc("3"));
    expect(dec(await s.get("k"))).toBe("3");
    await s.close();
  });

  it("recovers at once a lock of an earlier process that had our pid (a restarted container)", async (ctx) => {
    if (me.start === undefined) ctx.skip(); // no process start times on this platform
    const { dir, s, lock } = await storeWithLock(100);
    writeFileSync(lock, holderLine({ ...me, start: String(Number(me.start) - 1) }, "before-restart"));
    await s.set("k", enc("2"));
    expect(dec(await s.get("k"))).toBe("2");
    expect(leftLocks(dir)).toEqual([]);
    await s.close();
  });

  it("recovers at once a lock written before the host last booted", async (ctx) => {
    if (me.boot === undefined) ctx.skip(); // no boot id on this platform
    const { s, lock } = await storeWithLock(100);
    writeFileSync(lock, holderLine({ ...me, boot: "00000000-0000-0000-0000-000000000000" }, "last-boot"));
    await s.set("k", enc("2"));
    expect(dec(await s.get("k"))).toBe("2");
    await s.close();
  });

  it("recovers at once a lock of a dead process of this host", async () => {
    const { s, lock } = await storeWithLock(100);
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => dead.on("exit", r));
    writeFileSync(lock, holderLine({ ...me, pid: dead.pid!, start: undefined }, "dead"));
    await s.set("k", enc("2"));
    expect(dec(await s.get("k"))).toBe("2");
    await s.close();
  });

  it("keeps a lock it holds fresh, so a long operation is never taken for a dead one", async () => {
    const { s, lock } = await storeWithLock(100);
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    const holding = withLock(
      lock,
      1000,
      () => {},
      async () => {
        entered();
        await held;
      },
    );
    await inside;
    backdate(lock, 10 * 60_000);
    refreshHeld();
    expect(Date.now() - statSync(lock).mtimeMs).toBeLessThan(60_000);
    release();
    await holding;
    await s.close();
  });
});
