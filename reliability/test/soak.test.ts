import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type RedisServer, startRedis } from "@kvsession/test-helpers";
import { afterAll, describe, expect, it } from "vitest";
import { type AppEnv, type AppProcess, CRASH_SIGNS, startApp } from "../src/app-process.js";
import { type Answer, type Call, startLoad, summarize } from "../src/load.js";
import { sized } from "../src/mode.js";
import { csrfOf, openSession, saveProfile } from "../src/pin-client.js";
import { record } from "../src/record.js";
import { hasSqliteCli, sqlite } from "../src/sqlite-cli.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const root = mkdtempSync(join(tmpdir(), "rel-soak-"));
let app: AppProcess | undefined;
const apps: AppProcess[] = [];
let redis: RedisServer | undefined;
afterAll(async () => {
  for (const a of apps) await a.kill("SIGKILL");
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

const DURATION_MS = sized(35_000, 300_000);
const WARMUP_MS = sized(10_000, 60_000);
// Short idle timeout and sweep interval, so thousands of abandoned sessions expire during the run.
const IDLE_MS = 2000;
const SWEEP_MS = 1000;
const SWEEP_BATCH = 500; // kv-sqlite's default
const MiB = 1024 * 1024;

/**
 * One pass of a visitor: a new session, a profile, the page; then in turn logout, login + logout,
 * walk away, or login and walk away (abandoned sessions expire; logged-in ones sit in the user index).
 */
async function visitor(
  pass: number,
  send: (c: Call) => Promise<Answer>,
  churn: { abandoned: number; destroyed: number },
) {
  const t = await openSession(send);
  if (t === undefined) return;
  await saveProfile(send, t, `u${pass % 16}`, "1234");
  await send({ method: "GET", path: "/", cookie: t.cookie });
  const kind = pass % 4;
  if (kind === 0 || kind === 3) {
    const a = await send({
      method: "POST",
      path: "/login",
      cookie: t.cookie,
      form: { _csrf: t.csrf, name: `u${pass % 16}`, pin: "1234" },
    });
    if (a.cookie) t.cookie = a.cookie;
    const page = await send({ method: "GET", path: "/", cookie: t.cookie });
    t.csrf = csrfOf(page.body) ?? t.csrf;
  }
  if (kind <= 1) {
    await send({ method: "POST", path: "/logout", cookie: t.cookie, form: { _csrf: t.csrf } });
    churn.destroyed++;
  } else churn.abandoned++;
}

async function soak(env: AppEnv, count: () => Promise<{ rows: number; expired?: number }>) {
  app = await startApp({
    ...env,
    SESSION_IDLE_TIMEOUT_MS: String(IDLE_MS),
    STORE_SWEEP_INTERVAL_MS: String(SWEEP_MS),
    // A bounded heap: V8 otherwise lets the old generation grow for as long as this machine's 24 GiB
    // allow, and RSS after warm-up then read +24–39 MiB, once +77 (2026-11-29, no leak: the store's rows
    // stayed flat). Capped, it read +18–26 MiB over six runs, and a leak in the app's JavaScript now
    // ends in a crash (out of memory) that expectHealthy reports.
    NODE_OPTIONS: "--max-old-space-size=128",
  });
  const a = app;
  apps.push(a);
  const churn = { abandoned: 0, destroyed: 0 };
  let pass = 0;
  const load = startLoad({
    base: a.base,
    connections: 8,
    maxRequests: sized(400_000, 4_000_000),
    maxMs: DURATION_MS,
    timeoutMs: 30_000,
    user: (_w, send) => visitor(pass++, send, churn),
  });
  const memory: Array<{ at: number; rss: number }> = [];
  const store: Array<{ at: number; rows: number; expired?: number; abandoned: number }> = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      memory.push({ at: load.now(), rss: a.rss() });
      store.push({ at: load.now(), ...(await count()), abandoned: churn.abandoned });
      await sleep(1000);
    }
  })();
  const samples = await load.done;
  sampling = false;
  await sampler;
  const secs = DURATION_MS / 1000;
  // Median of three samples on each side, so one GC pause does not decide.
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const afterWarmup = median(
    memory
      .filter((m) => m.at >= WARMUP_MS)
      .slice(0, 3)
      .map((m) => m.rss),
  );
  const atEnd = median(memory.slice(-3).map((m) => m.rss));
  return {
    http: summarize(samples),
    requestsPerSecond: Math.round(samples.length / secs),
    churn,
    rssAfterWarmupMiB: +(afterWarmup / MiB).toFixed(1),
    rssAtEndMiB: +(atEnd / MiB).toFixed(1),
    rssGrowthMiB: +((atEnd - afterWarmup) / MiB).toFixed(1),
    rssMaxMiB: +(Math.max(...memory.map((m) => m.rss)) / MiB).toFixed(1),
    store,
    abandonedPerSecond: churn.abandoned / secs,
  };
}

/** What both soaks record besides their store's own counts. */
function figures(r: Awaited<ReturnType<typeof soak>>) {
  const { store: _store, abandonedPerSecond: _rate, ...rest } = r;
  return rest;
}

function expectHealthy(r: Awaited<ReturnType<typeof soak>>) {
  // First, so a crash (out of memory under the capped heap, say) is what the failure says.
  expect(app!.stderr().match(CRASH_SIGNS)?.[0]).toBeUndefined();
  expect(app!.alive()).toBe(true);
  expect(r.http.requests).toBeGreaterThan(1000);
  expect(r.http.errors).toEqual({});
  expect(Object.keys(r.http.byStatus).filter((s) => s !== "200" && s !== "303")).toEqual([]);
  expect(r.churn.abandoned).toBeGreaterThan(100);
  expect(r.churn.destroyed).toBeGreaterThan(100);
  // A leak check, not a timing one: tens of thousands of sessions through the app, flat memory.
  expect(r.rssGrowthMiB).toBeLessThan(40);
}

const withCli = await hasSqliteCli();

describe("soak: the express-pin app under a churn of sessions", () => {
  it.runIf(withCli)(
    "SQLite: no errors, flat memory, expired rows held within the sweep's bound",
    async () => {
      const path = join(root, "soak.db");
      const sql = async (q: string) => Number(await sqlite(path, q));
      const r = await soak({ SQLITE_PATH: path }, async () => {
        const now = Date.now();
        return {
          rows: await sql("SELECT count(*) FROM kv"),
          expired: await sql(`SELECT count(*) FROM kv WHERE expires_at <= ${now}`),
        };
      });
      const steady = r.store.filter((s) => s.at >= IDLE_MS + SWEEP_MS);
      const maxExpired = Math.max(...steady.map((s) => s.expired ?? 0));
      // Expired rows wait at most one sweep interval (plus a tick of slack) before a batch takes them.
      const bound = Math.ceil(SWEEP_BATCH + 3 * r.abandonedPerSecond * (SWEEP_MS / 1000));
      const end = r.store.at(-1)!;
      const warm = r.store.find((x) => x.at >= WARMUP_MS)!;
      record("soak-sqlite", {
        what: `express-pin on SQLite, ${DURATION_MS / 1000} s of 8 visitors creating, naming, logging in/out and abandoning sessions (idle timeout ${IDLE_MS} ms, sweep every ${SWEEP_MS} ms)`,
        ...figures(r),
        expiredRowsMax: maxExpired,
        expiredRowsBound: bound,
        rowsAfterWarmup: warm.rows,
        rowsAtEnd: end.rows,
      });
      expectHealthy(r);
      expect(maxExpired).toBeLessThanOrEqual(bound);
      // The table holds the live sessions, not the history: most abandoned ones are gone.
      expect(end.rows).toBeLessThan(r.churn.abandoned / 2);
      // Flat after warm-up: the live set (and the index and tombstones around it) does not pile up.
      expect(end.rows).toBeLessThanOrEqual(2 * warm.rows + SWEEP_BATCH);
    },
  );

  it("Redis: no errors, flat memory, expired sessions gone from the keyspace", async () => {
    redis = await startRedis();
    const port = String(redis.port);
    const r = await soak({ REDIS_URL: redis.url }, async () => ({
      rows: Number((await run("redis-cli", ["-p", port, "dbsize"])).stdout.trim()),
    }));
    const end = r.store.at(-1)!;
    const warm = r.store.find((x) => x.at >= WARMUP_MS)!;
    record("soak-redis", {
      what: `express-pin on Redis, ${DURATION_MS / 1000} s of 8 visitors creating, naming, logging in/out and abandoning sessions (idle timeout ${IDLE_MS} ms)`,
      ...figures(r),
      keysMax: Math.max(...r.store.map((s) => s.rows)),
      keysAfterWarmup: warm.rows,
      keysAtEnd: end.rows,
    });
    expectHealthy(r);
    expect(end.rows).toBeLessThan(r.churn.abandoned / 2);
    // Flat after warm-up: the live set (and the index and tombstones around it) does not pile up.
    expect(end.rows).toBeLessThanOrEqual(2 * warm.rows + SWEEP_BATCH);
  });
});
