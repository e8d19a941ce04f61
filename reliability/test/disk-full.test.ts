import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireService } from "@kvsession/kv-test-suite";
import { afterAll, describe, expect, it } from "vitest";
import { type AppEnv, type AppProcess, CRASH_SIGNS, startApp } from "../src/app-process.js";
import { type Call, type Sample, send, startLoad, summarize } from "../src/load.js";
import { sized } from "../src/mode.js";
import { inParallel, openSession, readBack, saveProfile, type Tracked } from "../src/pin-client.js";
import { record } from "../src/record.js";
import { hasSqliteCli, sqlite } from "../src/sqlite-cli.js";
import { mountTmpfs, type Tmpfs } from "../src/tmpfs.js";

const root = mkdtempSync(join(tmpdir(), "rel-full-"));
const apps: AppProcess[] = [];
const disks: Tmpfs[] = [];
afterAll(async () => {
  for (const a of apps) await a.kill("SIGKILL");
  for (const d of disks) d.unmount();
  rmSync(root, { recursive: true, force: true });
});

/** New sessions, each named once: writes only, so the disk fills. Stops a user at a failed write. */
function writeStorm(base: string, tracked: Tracked[], maxRequests: number, maxMs: number) {
  let n = 0;
  return startLoad({
    base,
    connections: 8,
    maxRequests,
    maxMs,
    timeoutMs: 30_000,
    async user(_w, send) {
      const t = await openSession(send);
      if (t === undefined) return;
      tracked.push(t);
      await saveProfile(send, t, `f${n++}`, "1234");
    },
  });
}

/**
 * The demo on a small tmpfs: sessions written, the disk filled behind the app's back, a write storm
 * that runs into ENOSPC, reads checked while it is full, then the filler deleted and service checked.
 */
async function diskFull(label: string, envFor: (dir: string) => AppEnv) {
  const disk = mountTmpfs(join(root, label), 8 * 1024 * 1024);
  disks.push(disk);
  const app = await startApp(envFor(disk.dir));
  apps.push(app);
  const tracked: Tracked[] = [];
  const url = app.base;
  // Stored before the disk fills: these must all still be there at every step after.
  const before: Tracked[] = [];
  const at = new URL(url);
  const s = (c: Call) => send(at, undefined, c, 30_000);
  await inParallel(8, sized(50, 500), async (i) => {
    const t = await openSession(s);
    if (!t || (await saveProfile(s, t, `b${i}`, "4321")).status !== 303)
      throw new Error("could not store the sessions before the disk filled");
    // The browser follows the 303: the page shows, and so consumes, the one-shot notice. Read
    // back later, the session then needs no write, so reads can be checked while the disk is full.
    if ((await s({ method: "GET", path: "/", cookie: t.cookie })).status !== 200)
      throw new Error("could not show the page before the disk filled");
    before.push(t);
  });
  tracked.push(...before);
  const release = disk.fill(128 * 1024);
  const full = writeStorm(url, tracked, sized(20_000, 200_000), sized(4000, 20_000));
  const fullSamples: Sample[] = await full.done;
  // Pure reads while still full. (A session whose page has a notice to consume needs a write to show
  // it, and gets a 503 until space returns: the records written during the storm are checked after.)
  const whileFull = await readBack(url, before);
  release();
  // Bounded in count too: an 8 MiB disk would fill up again, and this phase is about coming back.
  const after = writeStorm(url, tracked, 1000, sized(2000, 10_000));
  const afterSamples = await after.done;
  const atEnd = await readBack(url, tracked);
  return {
    app,
    disk,
    whileFull,
    atEnd,
    full: summarize(fullSamples),
    after: summarize(afterSamples),
    stored: tracked.length,
  };
}

const hasTmpfs = await requireService("a tmpfs mount (needs root)", async () => {
  const probe = join(root, "probe");
  mkdirSync(probe);
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]);
  execFileSync("umount", [probe]);
});

const withCli = await hasSqliteCli();

describe.runIf(hasTmpfs)("disk full under the app", () => {
  for (const driver of ["sqlite", "fs"] as const) {
    it.runIf(driver === "fs" || withCli)(
      `${driver}: 503s with the typed store error, no crash, nothing stored lost, service back once space is freed`,
      async () => {
        const r = await diskFull(driver, (dir) =>
          driver === "sqlite"
            ? { SQLITE_PATH: join(dir, "sessions.db") }
            : { KV_FS_DIR: join(dir, "sessions") },
        );
        const figures: Record<string, unknown> = {
          what: `express-pin on ${driver === "sqlite" ? "SQLite" : "kv-fs"} on an 8 MiB tmpfs, filled to 128 KiB free behind the app, 8-connection write storm, then the filler deleted`,
          whileFull: r.full,
          afterFreeing: r.after,
          sessionsStored: r.stored,
          readBackWhileFull: r.whileFull.checked,
          lostWhileFull: r.whileFull.lost.length,
          lostAtEnd: r.atEnd.lost.length,
          appAlive: r.app.alive(),
        };
        if (driver === "sqlite") {
          figures.integrityCheck = await sqlite(join(r.disk.dir, "sessions.db"), "PRAGMA integrity_check");
        }
        record(`disk-full-${driver}`, figures);

        // Full: refused with 503 (the store error through the framework's error path), never a dropped connection.
        expect(r.full.byStatus["503"]).toBeGreaterThan(0);
        expect(r.full.errors).toEqual({});
        expect(Object.keys(r.full.byStatus).filter((s) => !["200", "303", "503"].includes(s))).toEqual([]);
        expect(r.app.stderr()).toMatch(/KvStorageFullError/);
        expect(r.app.stderr().match(CRASH_SIGNS)?.[0]).toBeUndefined();
        expect(r.app.alive()).toBe(true);
        // Nothing acknowledged is lost, neither while full nor after.
        expect(r.whileFull.lost).toEqual([]);
        expect(r.atEnd.lost).toEqual([]);
        // Space back: every request of the second storm succeeds, on the same app process.
        expect(r.after.requests).toBeGreaterThan(0);
        expect(r.after.errors).toEqual({});
        expect(Object.keys(r.after.byStatus).filter((s) => s !== "200" && s !== "303")).toEqual([]);
        if (driver === "sqlite") expect(figures.integrityCheck).toBe("ok");
      },
    );
  }
});
