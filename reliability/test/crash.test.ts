import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFsStore } from "@kvsession/kv-fs";
import { afterAll, describe, expect, it } from "vitest";
import { type AppEnv, type AppProcess, CRASH_SIGNS, startApp } from "../src/app-process.js";
import { startLoad, summarize } from "../src/load.js";
import { sized } from "../src/mode.js";
import { openSession, readBack, saveProfile, type Tracked } from "../src/pin-client.js";
import { record } from "../src/record.js";
import { hasSqliteCli, sqlite } from "../src/sqlite-cli.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const root = mkdtempSync(join(tmpdir(), "rel-crash-"));
const apps: AppProcess[] = [];
afterAll(async () => {
  for (const a of apps) await a.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

/**
 * A write storm on the demo (new sessions, then profile writes on each), the app SIGKILLed in the
 * middle of it, then started again on the same file or directory: every acknowledged write is read back.
 */
async function crashDuringStorm(env: AppEnv) {
  const first = await startApp(env);
  apps.push(first);
  const tracked: Tracked[] = [];
  let writes = 0;
  const load = startLoad({
    base: first.base,
    connections: 8,
    maxRequests: sized(200_000, 5_000_000),
    maxMs: 120_000,
    timeoutMs: 30_000,
    async user(w, send) {
      const t = await openSession(send);
      if (t === undefined) return;
      tracked.push(t);
      for (let n = 0; n < 5; n++) {
        const a = await saveProfile(send, t, `w${w}-${writes++}`, String(1000 + n));
        // The process is gone: what this session holds is its last acknowledged name or the one in flight.
        if (a.status === 0) return;
      }
    },
  });
  await sleep(sized(2500, 30_000));
  await first.kill("SIGKILL");
  load.stop();
  const samples = await load.done;
  return { first, tracked, storm: summarize(samples) };
}

const withCli = await hasSqliteCli();

describe("the app SIGKILLed during a write storm", () => {
  it.runIf(withCli)(
    "SQLite: every acknowledged write is there after a restart, and the file passes integrity_check",
    async () => {
      const path = join(root, "sessions.db");
      const { tracked, storm } = await crashDuringStorm({ SQLITE_PATH: path });
      const integrity = await sqlite(path, "PRAGMA integrity_check");
      const again = await startApp({ SQLITE_PATH: path });
      apps.push(again);
      const { checked, lost } = await readBack(again.base, tracked);
      const rows = await sqlite(path, "SELECT count(*) FROM kv");
      record("crash-sqlite", {
        what: "express-pin on SQLite (WAL, durability normal); 8-connection write storm (GET / creates, POST /profile names), app SIGKILLed mid-storm, restarted on the same file",
        storm,
        acknowledgedSessions: checked,
        acknowledgedProfileWrites: storm.byStatus["303"] ?? 0,
        sessionsWithAckedName: tracked.filter((t) => t.name !== undefined).length,
        lost: lost.length,
        integrityCheck: integrity,
        rowsAfterRestart: Number(rows),
      });
      expect(storm.byStatus["303"]).toBeGreaterThan(100);
      expect(checked).toBeGreaterThan(50);
      expect(integrity).toBe("ok");
      expect(lost).toEqual([]);
      expect(again.stderr().match(CRASH_SIGNS)?.[0]).toBeUndefined();
    },
  );

  it("kv-fs: every acknowledged write is there after a restart, and the directory opens and lists cleanly", async () => {
    const dir = join(root, "fs");
    const { tracked, storm } = await crashDuringStorm({ KV_FS_DIR: dir });
    // Opened and listed in full before the app touches it again: no leftovers make it refuse or fail.
    const store = createFsStore({ dir, sweepIntervalMs: false });
    let listed = 0;
    for await (const key of store.keys()) {
      listed++;
      expect(await store.get(key), key).toBeDefined();
    }
    await store.close();
    const again = await startApp({ KV_FS_DIR: dir });
    apps.push(again);
    const { checked, lost } = await readBack(again.base, tracked);
    record("crash-fs", {
      what: "express-pin on kv-fs (durability normal, locking on); 8-connection write storm, app SIGKILLed mid-storm, restarted on the same directory",
      storm,
      acknowledgedSessions: checked,
      acknowledgedProfileWrites: storm.byStatus["303"] ?? 0,
      sessionsWithAckedName: tracked.filter((t) => t.name !== undefined).length,
      lost: lost.length,
      keysListedAfterCrash: listed,
    });
    expect(storm.byStatus["303"]).toBeGreaterThan(100);
    expect(checked).toBeGreaterThan(50);
    expect(listed).toBeGreaterThanOrEqual(checked);
    expect(lost).toEqual([]);
    expect(again.stderr().match(CRASH_SIGNS)?.[0]).toBeUndefined();
  });
});
