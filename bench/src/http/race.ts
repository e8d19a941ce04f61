// The same-cookie race: concurrent requests carrying one session cookie (a tab's parallel fetches,
// two tabs, a retry storm), each reading a counter from the session and writing it back plus one.
//   pnpm --filter @kvsession/bench bench:http:race              full run (3 repeats)
//   ... --quick              1 repeat, 2 one-second slices per no-contention server and route (smoke run)
//   ... --repeats N --requests N --connections N
//   ... --seconds N              without contention: seconds per server and route, in alternating one-second slices
//   ... --warm-up N --warm N     requests before the first window (default none) / before the second (0: no second)
//   ... --warm-requests N        the second window's requests
//   ... --calm-warm-up N         seconds of route A before the no-contention measurement
//   ... --only text[|text]   stacks whose "framework: name" contains one of the texts (=text: is exactly it);
//                            printed and kept in bench/results/http-race.json, docs/benchmarks.md left as it is
//   ... --no-calm / --no-race    skip the no-contention part / the race
// Per stack and repeat: a fresh server process (pinned to core 1, with a private redis-server and the
// PostgreSQL backends serving it), one new session, the process's first requests on route A over the
// connections, all with its cookie (autocannon, pinned to core 0), and the counter read back.
// Lost = acknowledged (200) increments - (final counter - counter before). Then more requests on
// another session, in bands as long as that window, each band's rate kept (how the process warms
// up), and a longer window in the now warm process: a fresh process spends much of its first
// thousands of requests compiling, which a long-running server has long done, and when in those
// thousands each stack compiles differs, so one window from the start answers only for itself.
// Then, without contention (1,000 distinct cookies, 64 connections), ours on Redis in serialised
// mode against the default mode, on route A and on route B (which never touches the session): the
// two servers of a pair run side by side and are measured in alternating one-second slices.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type RedisServer, startRedis } from "@kvsession/test-helpers";
import autocannon from "autocannon";
import pg from "pg";
import { createClient } from "redis";
import {
  DATABASE_URL,
  PG_APP_NAME,
  PG_PEER_TABLE,
  PG_TABLE,
  RACE_VARIANTS,
  type Variant,
  variantKey,
} from "./apps.js";
import { args, flag, pickedByOnly, repoRoot as root } from "./cli.js";
import {
  type CalmRow,
  type RaceMeta,
  type RaceRow,
  type RaceSample,
  renderRaceSection,
} from "./race-report.js";
import {
  CONNECTIONS,
  cookiePool,
  cpuTicks,
  cpuTimeUs,
  load,
  POOL,
  pinLoadGenerator,
  pinned,
  type Sample,
  startServer,
  stealSince,
  stopServer,
} from "./servers.js";

const quick = args.includes("--quick");
const repeats = Number(flag("repeats") ?? (quick ? 1 : 3));
const requests = Number(flag("requests") ?? 2000);
const connections = Number(flag("connections") ?? 10);
/** Without contention: one-second slices per server and route, alternating between the two modes. */
const seconds = Number(flag("seconds") ?? (quick ? 2 : 6));
const only = flag("only");
const runRace = !args.includes("--no-race");
const runCalm = !args.includes("--no-calm");
/** Requests on a session of their own before the first window (none by default: the window is the process's first requests). */
const WARM_UP = Number(flag("warm-up") ?? 0);
/** Seconds of route A before the no-contention measurement, so it measures a server past compiling what it runs. */
const CALM_WARM_UP = Number(flag("calm-warm-up") ?? (quick ? 2 : 10));
/** Requests a server has answered before the second window (the JIT has settled by then); 0: no second window. */
const WARM = Number(flag("warm") ?? 10_000);
/** The second window's requests: more than the first's, since a warm server answers them several times faster. */
const WARM_REQUESTS = Number(flag("warm-requests") ?? (quick ? 2_000 : 10_000));

pinLoadGenerator();

const log = (...a: unknown[]) => console.error(...a);
const loads: number[] = [];

/** Redis URL of the private server, for the app servers (which read it from the environment). */
let redisEnv: NodeJS.ProcessEnv = {};
/** Its process, whose CPU time the race reports. */
let redisPid: number | undefined;

/** Drops our PostgreSQL table (its version sequence is owned by it) and its schema record, and the peers' table. */
async function dropPgTable(): Promise<void> {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  try {
    await c.query(`DROP TABLE IF EXISTS ${PG_TABLE}`);
    await c.query(`DROP TABLE IF EXISTS ${PG_PEER_TABLE}`);
    await c.query("DELETE FROM kvsession_meta WHERE table_name = $1", [PG_TABLE]).catch(() => {});
  } finally {
    await c.end();
  }
}

/** The PostgreSQL backends serving the app server, moved to core 1 beside the server and redis-server. */
async function pinPgBackends(): Promise<number[]> {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  try {
    const { rows } = await c.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
      [PG_APP_NAME],
    );
    if (pinned)
      for (const { pid } of rows) spawnSync("taskset", ["-cp", "1", String(pid)], { stdio: "ignore" });
    return rows.map((r) => r.pid);
  } finally {
    await c.end();
  }
}

/** Commands the private redis-server has run (INFO commandstats; a script's own commands counted too), this count's own left out. */
async function redisCommands(): Promise<number> {
  const c = createClient({ url: redisEnv.BENCH_REDIS_URL });
  await c.connect();
  try {
    const info = await c.info("commandstats");
    let n = 0;
    for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm))
      if (!OURS.has(m[1]!)) n += Number(m[2]);
    return n;
  } finally {
    await c.quit();
  }
}
const OURS = new Set(["info", "hello", "client|setinfo", "quit"]);

/** A new session: route A with no cookie; returns the Cookie header value that carries it. */
async function newSession(base: string, name: string): Promise<string> {
  const res = await fetch(`${base}/a`);
  await res.text();
  const c = res.headers.getSetCookie().find((x) => x.startsWith(`${name}=`));
  if (c === undefined) throw new Error(`no ${name} cookie from ${base}/a (status ${res.status})`);
  return c.split(";")[0]!;
}

async function counter(base: string, cookie: string): Promise<number> {
  const res = await fetch(`${base}/n`, { headers: { cookie } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET /n answered ${res.status}: ${body.slice(0, 200)}`);
  return Number(body);
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

/** `count` requests to `path` over `conns` connections, every one with `cookie`. */
async function burst(base: string, path: string, cookie: string, count: number, conns: number) {
  const latencies: number[] = [];
  let acked = 0;
  let other = 0;
  const started = performance.now();
  let last = started;
  const instance = autocannon({
    url: `${base}${path}`,
    connections: conns,
    amount: count,
    headers: { cookie },
    sampleInt: 100,
  });
  instance.on("response", (_client, status, _bytes, ms) => {
    last = performance.now();
    latencies.push(ms);
    if (status === 200) acked++;
    else other++;
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  return {
    acked,
    other,
    errors: result.errors + result.timeouts,
    rps: (acked + other) / ((last - started) / 1000),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

/**
 * One race in a fresh server process: the first window, then (`WARM` > 0) bands of as many requests
 * up to `WARM` (the rate of each band from the first window on: `bands`), then a longer window.
 */
async function raceOnce(
  v: Variant,
): Promise<{ fresh: RaceSample; bands: number[]; warm?: RaceSample } | string> {
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  loads.push(loadavg()[0]!);
  try {
    server = await startServer(RACE_VARIANTS.indexOf(v), redisEnv, "race");
    const base = `http://127.0.0.1:${server.port}`;
    const warmSession = await newSession(base, v.cookie);
    if (WARM_UP > 0) await burst(base, "/a", warmSession, WARM_UP, connections);
    const storePids: number[] =
      v.store === "redis" && redisPid !== undefined
        ? [redisPid]
        : v.store === "postgres"
          ? await pinPgBackends()
          : [];
    const pid = server.child.pid;
    const storeCpu = () => storePids.reduce((sum, p) => sum + cpuTimeUs(p), 0);
    /** One window: a new session, `count` requests with its cookie, the counter read back. */
    const window = async (label: string, count: number): Promise<RaceSample> => {
      const cookie = await newSession(base, v.cookie);
      const before = await counter(base, cookie);
      const counted = v.store === "redis" ? await redisCommands() : undefined;
      const cpu0 = cpuTimeUs(pid);
      const sys0 = cpuTimeUs(pid, "system");
      const store0 = storeCpu();
      const ticks = cpuTicks();
      const b = await burst(base, "/a", cookie, count, connections);
      const served = Math.max(1, b.acked + b.other);
      const steal = stealSince(ticks);
      const serverCpuUs = (cpuTimeUs(pid) - cpu0) / served;
      const serverSysUs = (cpuTimeUs(pid, "system") - sys0) / served;
      const storeCpuUs = storePids.length > 0 ? (storeCpu() - store0) / served : undefined;
      const redisPerRequest =
        counted === undefined ? undefined : ((await redisCommands()) - counted) / served;
      const after = await counter(base, cookie);
      const s: RaceSample = {
        ...b,
        redisCommands: redisPerRequest,
        serverCpuUs,
        serverSysUs,
        storeCpuUs,
        steal,
        before,
        after,
        lost: b.acked - (after - before),
      };
      log(
        `  ${variantKey(v)} (${label}): ${s.acked} acknowledged, counter ${before} -> ${after}, lost ${s.lost}, ${Math.round(s.rps)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, non-200 ${s.other}, errors ${s.errors}, server CPU ${serverCpuUs.toFixed(0)} µs/req (system ${serverSysUs.toFixed(0)})${redisPerRequest === undefined ? "" : `, Redis commands ${redisPerRequest.toFixed(2)}/req`}${storeCpuUs === undefined ? "" : `, store server CPU ${storeCpuUs.toFixed(0)} µs/req`}, steal ${(steal * 100).toFixed(0)}%`,
      );
      return s;
    };
    const fresh = await window("fresh", requests);
    const bands = [fresh.rps];
    if (WARM <= WARM_UP + requests) return { fresh, bands };
    for (let served = WARM_UP + requests; served < WARM; served += requests)
      bands.push((await burst(base, "/a", warmSession, Math.min(requests, WARM - served), connections)).rps);
    log(
      `  ${variantKey(v)} (from the start, per ${requests}): ${bands.map((r) => Math.round(r)).join(" ")} req/s`,
    );
    return { fresh, bands, warm: await window("warm", WARM_REQUESTS) };
  } catch (err) {
    log(`  ${variantKey(v)}: FAILED ${(err as Error).message}`);
    return (err as Error).message;
  } finally {
    if (server) await stopServer(server.child);
  }
}

/** A server of a no-contention pair, started with its cookie pool. */
interface CalmServer {
  v: Variant;
  server: Awaited<ReturnType<typeof startServer>>;
  base: string;
  pool: string[];
}

/** One sample from a server's slices of one route (the slices last the same time, so rates average). */
function combine(slices: Sample[]): Sample {
  const mean = (f: (s: Sample) => number) => slices.reduce((a, s) => a + f(s), 0) / slices.length;
  const p99s = slices.map((s) => s.p99).sort((a, b) => a - b);
  return {
    rps: mean((s) => s.rps),
    p99: p99s[p99s.length >> 1]!,
    errors: slices.reduce((a, s) => a + s.errors, 0),
    // Each slice's CPU per request weighted by its requests: total CPU over total requests.
    cpuUs: slices.reduce((a, s) => a + s.cpuUs * s.rps, 0) / slices.reduce((a, s) => a + s.rps, 0),
    steal: mean((s) => s.steal),
  };
}

/**
 * One no-contention comparison: both modes' servers fresh and running side by side, each with POOL
 * sessions and a warm-up, then each route measured in one-second slices that alternate between the
 * two. A server process's speed differs from the next one's, and the machine's from minute to
 * minute: alternating slices cancels the drift, and the rounds (each with new processes, started
 * in the other order) average the processes.
 */
async function calmPair(
  framework: "express" | "fastify",
  names: [string, string],
  round: number,
): Promise<Map<"a" | "b", [Sample, Sample]> | string> {
  const started: CalmServer[] = [];
  try {
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    const pair: CalmServer[] = [];
    for (const i of order) {
      const v = byName(framework, names[i]!);
      loads.push(loadavg()[0]!);
      const server = await startServer(RACE_VARIANTS.indexOf(v), redisEnv, "race");
      const base = `http://127.0.0.1:${server.port}`;
      const one = { v, server, base, pool: [] as string[] };
      started.push(one);
      one.pool = await cookiePool(base, v.cookie);
      pair[i] = one;
    }
    for (const x of started) {
      const warm = await load(x.base, "/a", x.pool, CALM_WARM_UP);
      if (warm.errors > 0) log(`  ${variantKey(x.v)}: ${warm.errors} failed requests during the warm-up`);
    }
    const out = new Map<"a" | "b", [Sample, Sample]>();
    for (const r of pair[1]!.v.routes) {
      const slices: [Sample[], Sample[]] = [[], []];
      for (let k = 0; k < seconds; k++)
        for (const i of k % 2 === 0 ? order : [...order].reverse()) {
          const x = pair[i]!;
          slices[i]!.push(await load(x.base, `/${r}`, x.pool, 1, x.server.child.pid));
        }
      const got: [Sample, Sample] = [combine(slices[0]), combine(slices[1])];
      out.set(r, got);
      for (const i of [0, 1]) {
        const s = got[i]!;
        log(
          `  ${variantKey(pair[i]!.v)} route ${r.toUpperCase()}: ${Math.round(s.rps)} req/s, p99 ${s.p99} ms, server CPU ${s.cpuUs.toFixed(0)} µs/req, errors ${s.errors}, steal ${(s.steal * 100).toFixed(0)}%`,
        );
      }
    }
    return out;
  } catch (err) {
    log(`  ${framework}: ${names.join(" / ")}: FAILED ${(err as Error).message}`);
    return (err as Error).message;
  } finally {
    for (const x of started) await stopServer(x.server.child);
  }
}

/**
 * The no-contention comparisons of each framework, [default mode, serialised mode] measured in the
 * same round: ours on Redis serialised for the whole app and on route A only against the default
 * mode, and on Express the middleware mounted on route A alone in each mode.
 */
const CALM_PAIRS: Record<"express" | "fastify", Array<[string, string]>> = {
  express: [
    ["ours, Redis", "ours, Redis, serialised"],
    ["ours, Redis", "ours, Redis, serialised on route A"],
    ["ours, Redis, mounted on route A only", "ours, Redis, serialised, mounted on route A only"],
  ],
  fastify: [
    ["ours, Redis", "ours, Redis, serialised"],
    ["ours, Redis", "ours, Redis, serialised on route A"],
  ],
};
/** Each framework's no-contention servers, which `--only` picks among. */
const calmServers = (f: "express" | "fastify") => [...new Set(CALM_PAIRS[f].flat())];

const byName = (framework: string, name: string) => {
  const v = RACE_VARIANTS.find((x) => x.framework === framework && x.name === name);
  if (v === undefined) throw new Error(`no race variant ${framework}: ${name}`);
  return v;
};

async function main() {
  const started = Date.now();
  const stacks = RACE_VARIANTS.filter(
    (v) => v.mode !== "serialised on A" && !v.name.includes("route A only") && pickedByOnly(variantKey(v)),
  );
  const frameworks = (["express", "fastify"] as const).filter((f) =>
    calmServers(f).some((name) => pickedByOnly(`${f}: ${name}`)),
  );
  log(
    `HTTP same-cookie race: ${runRace ? stacks.length : 0} stacks, ${requests} requests over ${connections} connections, ${repeats} repeats; no contention: ${runCalm ? frameworks.reduce((n, f) => n + CALM_PAIRS[f].length, 0) : 0} pairs of servers, ${seconds} s per server and route; pinned: ${pinned}`,
  );
  let redis: RedisServer | undefined;
  const raceSamples = new Map<
    Variant,
    { ss: RaceSample[]; bands: number[][]; warm: RaceSample[]; failure?: string }
  >();
  const calmSamples = new Map<string, Array<{ d?: Sample; s?: Sample }>>();
  let calmFailure: string | undefined;
  try {
    redis = await startRedis();
    if (pinned) spawnSync("taskset", ["-cp", "1", String(redis.process.pid)], { stdio: "ignore" });
    redisEnv = { BENCH_REDIS_URL: redis.url };
    redisPid = redis.process.pid;
    await dropPgTable();
    // Round-robin (every stack once per round) so drift in machine load spreads over all rows.
    if (runRace)
      for (let rep = 0; rep < repeats; rep++) {
        log(`race, round ${rep + 1}/${repeats}`);
        // The order reverses every other round, so no stack always runs before the peer it is compared with.
        for (const v of rep % 2 === 0 ? stacks : [...stacks].reverse()) {
          const got = await raceOnce(v);
          const entry = raceSamples.get(v) ?? { ss: [], bands: [], warm: [] };
          if (typeof got === "string") entry.failure = got;
          else {
            entry.ss.push(got.fresh);
            entry.bands.push(got.bands);
            if (got.warm) entry.warm.push(got.warm);
          }
          raceSamples.set(v, entry);
        }
      }
    if (runCalm)
      for (let rep = 0; rep < repeats; rep++) {
        log(`no contention, round ${rep + 1}/${repeats}`);
        for (const framework of frameworks)
          for (const names of CALM_PAIRS[framework]) {
            const got = await calmPair(framework, names, rep);
            if (typeof got === "string") {
              calmFailure = got;
              continue;
            }
            for (const [route, [d, s]] of got) {
              const k = `${framework}|${names[1]}|${route}`;
              calmSamples.set(k, [...(calmSamples.get(k) ?? []), { d, s }]);
            }
          }
      }
  } finally {
    await redis?.stop();
    await dropPgTable().catch((err: unknown) => log(`could not drop ${PG_TABLE}: ${String(err)}`));
  }

  const raceRows: RaceRow[] = [...raceSamples.entries()].map(([v, { ss, bands, warm, failure }]) => ({
    framework: v.framework,
    name: v.name,
    role: v.role,
    store: v.store,
    mode: v.role === "peer" ? "—" : (v.mode ?? "default"),
    samples: ss,
    bands,
    warm,
    failure,
  }));
  const calmRows: CalmRow[] = [...calmSamples.entries()].map(([k, xs]) => {
    const [framework, name, route] = k.split("|") as ["express" | "fastify", string, "a" | "b"];
    const both = xs.filter((x): x is { d: Sample; s: Sample } => x.d !== undefined && x.s !== undefined);
    return { framework, name, route, rounds: both.map((x) => [x.d, x.s] as [Sample, Sample]) };
  });
  const meta: RaceMeta = {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? "?"}`,
    repeats,
    requests,
    connections,
    warmUp: WARM_UP,
    warm: WARM,
    warmRequests: WARM_REQUESTS,
    seconds,
    calmWarmUp: CALM_WARM_UP,
    calmConnections: CONNECTIONS,
    pool: POOL,
    pinned,
    minutes: ((Date.now() - started) / 60_000).toFixed(1),
    calmFailure,
  };
  log(
    `load average (1 min) before each measurement: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
  );
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  writeFileSync(
    join(root, "bench", "results", "http-race.json"),
    JSON.stringify({ meta, loads, raceRows, calmRows }, null, 2),
  );
  const section = renderRaceSection(raceRows, calmRows, meta);
  console.log(section);
  if (only !== undefined || !runRace || !runCalm) {
    log("a subset ran: results in bench/results/http-race.json, docs/benchmarks.md left as it is");
    return;
  }
  const docs = join(root, "docs", "benchmarks.md");
  let md = readFileSync(docs, "utf8");
  const re = /<!-- bench:http-race:start -->[\s\S]*?<!-- bench:http-race:end -->/;
  md = re.test(md) ? md.replace(re, section) : `${md.trimEnd()}\n\n${section}\n`;
  writeFileSync(docs, md);
  log(`wrote the bench:http-race section of docs/benchmarks.md in ${meta.minutes} min`);
}

await main();
