// The HTTP session benchmark: Express and Fastify, bare / peers / ours / the hand-written limit, in one run.
//   pnpm --filter @kvsession/bench bench:http                 full run (5 s per measurement, 3 repeats, median)
//   pnpm --filter @kvsession/bench bench:http --quick         smoke run (2 s, 1 repeat, no 1M pre-fill)
//   ... --only express   rows whose "framework: name" contains the text;  --no-scale  skip the 1M pre-fill
// Loopback only. The app server runs in a fresh child process per measurement, pinned to core 1
// (`taskset -c 1`, as is redis-server); autocannon runs here, pinned to core 0.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { median } from "../median.js";
import { BIG_REDIS_URL, REDIS_URL, VARIANTS, type Variant, variantKey } from "./apps.js";
import { renderChart } from "./chart.js";
import { args, flag, repoRoot as root } from "./cli.js";
import { type Row, renderSection } from "./report.js";
import {
  CONNECTIONS,
  cookiePool,
  load,
  POOL,
  pinLoadGenerator,
  pinned,
  prefillSessions,
  type Sample,
  startServer,
  stopServer,
} from "./servers.js";

const quick = args.includes("--quick");
const seconds = Number(flag("seconds") ?? (quick ? 2 : 5));
const repeats = Number(flag("repeats") ?? (quick ? 1 : 3));
const only = flag("only");
const scale = !quick && !args.includes("--no-scale");
const PREFILL = Number(flag("prefill") ?? 1_000_000);
const SMALL_LABEL = " (~1k stored sessions)";

pinLoadGenerator();

const log = (...a: unknown[]) => console.error(...a);

/** One fresh server process: cookie pool, warm-up, then each route for `seconds`. */
async function measureOnce(
  v: Variant,
  routes: Array<"a" | "b">,
  label: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Map<string, Sample> | string> {
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    server = await startServer(VARIANTS.indexOf(v), env);
    const base = `http://127.0.0.1:${server.port}`;
    const pool = await cookiePool(base, v.cookie);
    await load(base, "/a", pool, 1); // warm-up (JIT, connections)
    const out = new Map<string, Sample>();
    for (const r of routes) {
      const s = await load(base, `/${r}`, pool, seconds, server.child.pid);
      out.set(r, s);
      log(
        `  ${variantKey(v)}${label} route ${r.toUpperCase()}: ${Math.round(s.rps)} req/s, p99 ${s.p99} ms, server CPU ${s.cpuUs.toFixed(0)} µs/req, errors ${s.errors}`,
      );
    }
    return out;
  } catch (err) {
    log(`  ${variantKey(v)}${label}: FAILED ${(err as Error).message}`);
    return (err as Error).message;
  } finally {
    if (server) await stopServer(server.child);
  }
}

/** Collects samples per (variant, label, route) and turns them into median rows. */
function collector() {
  const samples = new Map<
    string,
    { v: Variant; label: string; route: "a" | "b"; ss: Sample[]; failure?: string }
  >();
  return {
    add(v: Variant, label: string, routes: Array<"a" | "b">, got: Map<string, Sample> | string) {
      for (const route of routes) {
        const k = `${variantKey(v)}|${label}|${route}`;
        const entry = samples.get(k) ?? { v, label, route, ss: [] };
        if (typeof got === "string") entry.failure = got;
        else entry.ss.push(got.get(route)!);
        samples.set(k, entry);
      }
    },
    rows(): Row[] {
      return [...samples.values()].map(({ v, label, route, ss, failure }) => ({
        framework: v.framework,
        name: v.name + label,
        role: v.role,
        route,
        store: v.store,
        rps: ss.length ? median(ss.map((s) => s.rps)) : Number.NaN,
        p99: ss.length ? median(ss.map((s) => s.p99)) : Number.NaN,
        cpuUs: ss.length ? median(ss.map((s) => s.cpuUs)) : Number.NaN,
        errors: ss.reduce((a, s) => a + s.errors, 0),
        runs: ss.length,
        failure,
      }));
    },
  };
}

async function main() {
  const client = createClient({ url: REDIS_URL });
  client.on("error", () => {});
  await client.connect();
  // The benchmark owns this DB (15 by default): empty at the start, emptied at the end.
  await client.flushDb();
  const picked = VARIANTS.filter((v) => only === undefined || variantKey(v).includes(only));
  const rows: Row[] = [];
  const started = Date.now();
  log(
    `HTTP bench: ${picked.length} servers, ${seconds} s x ${repeats} per route, ${CONNECTIONS} connections, pool ${POOL} sessions, pinned: ${pinned}`,
  );
  try {
    // Round-robin (every variant once per round) so drift in machine load spreads over all rows.
    const main = collector();
    for (let rep = 0; rep < repeats; rep++) {
      log(`round ${rep + 1}/${repeats}`);
      for (const v of picked) main.add(v, "", v.routes, await measureOnce(v, v.routes, ""));
    }
    rows.push(...main.rows());
    if (scale) {
      // Same Redis instance, two DBs: the usual one (~1k sessions) and BIG_DB with 1M more. Alternating
      // between them, round after round, keeps drift out of the comparison.
      const big = createClient({ url: BIG_REDIS_URL });
      big.on("error", () => {});
      await big.connect();
      try {
        await big.flushDb();
        log(`pre-filling ${PREFILL} sessions into ${BIG_REDIS_URL}…`);
        await prefillSessions(big, PREFILL);
        log(`  now ${await big.dbSize()} keys`);
        const scaled = collector();
        const targets = picked.filter(
          (x) => x.role === "ours" && x.store === "redis" && x.routes.includes("a"),
        );
        const bigLabel = ` (${PREFILL >= 1e6 ? `${PREFILL / 1e6}M` : `${PREFILL / 1e3}k`} stored sessions)`;
        for (let rep = 0; rep < repeats; rep++)
          for (const v of targets) {
            scaled.add(v, SMALL_LABEL, ["a"], await measureOnce(v, ["a"], SMALL_LABEL));
            scaled.add(
              v,
              bigLabel,
              ["a"],
              await measureOnce(v, ["a"], bigLabel, { BENCH_REDIS_URL: BIG_REDIS_URL }),
            );
          }
        rows.push(...scaled.rows());
      } finally {
        await big.flushDb();
        await big.quit();
      }
    }
  } finally {
    await client.flushDb();
    await client.quit();
  }
  const meta = {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? "?"}`,
    seconds,
    repeats,
    connections: CONNECTIONS,
    pool: POOL,
    prefill: scale ? PREFILL : 0,
    pinned,
    minutes: ((Date.now() - started) / 60_000).toFixed(1),
  };
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  writeFileSync(join(root, "bench", "results", "http.json"), JSON.stringify({ meta, rows }, null, 2));
  if (only !== undefined) {
    log("--only given: results in bench/results/http.json, docs not updated");
    return;
  }
  const docs = join(root, "docs", "benchmarks.md");
  const section = renderSection(rows, meta);
  let md = readFileSync(docs, "utf8");
  const re = /<!-- bench:http:start -->[\s\S]*?<!-- bench:http:end -->/;
  md = re.test(md) ? md.replace(re, section) : `${md.trimEnd()}\n\n${section}\n`;
  writeFileSync(docs, md);
  writeFileSync(join(root, "docs", "http-bench.svg"), renderChart(rows));
  log(`wrote docs/benchmarks.md (bench:http section) and docs/http-bench.svg in ${meta.minutes} min`);
}

await main();
