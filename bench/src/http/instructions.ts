// Server instructions per request, counted by valgrind's callgrind: the HTTP benchmark's servers, one
// at a time, each answering a fixed number of route A (and B) requests.
//   pnpm --filter @kvsession/bench bench:http:instructions            every server (~15 min)
//   ... --only text[|text] rows whose "framework: name" contains one of the texts (=text: is exactly it)
//   ... --race             the same-cookie race's servers (bench:http:race), every request on one
//                          cookie over 10 connections, route A only; printed, docs left as they are
//   ... --warmup N --requests N    (defaults 3000 and 2000)
//   ... --pool N           session cookies the requests take turns with (defaults: 200; 1 with --race);
//                          --race --pool 1000 counts its servers without contention; --pool 0 sends
//                          no cookie (route A starts a new session on every request)
//   ... --all-threads      count V8's helper threads too (the optimising compiler): with --warmup 0, what
//                          a fresh process spends on its first requests, compiling included; printed only
//   ... --keep DIR         keep each counted window's callgrind files in DIR, for callgrind_annotate
//                          (where the instructions go: builtins and Node's C++ by name, JIT code by address)
// Why: req/s and CPU time on a shared VM move a lot from one run to the next, and within one when a
// neighbour wakes up; the main thread's instruction count repeats closely.
// It counts the app server's own work only — not the kernel's, not Redis's, not cache misses — so it
// complements req/s, it does not replace it.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { callgrindArgs, mainThreadTotal, threadTotals } from "../callgrind.js";
import { VARIANTS as HTTP_VARIANTS, RACE_VARIANTS, REDIS_URL, type Variant, variantKey } from "./apps.js";
import { args, flag, httpDir as here, pickedByOnly, repoRoot as root } from "./cli.js";

const only = flag("only");
const keep = flag("keep");
if (keep !== undefined) mkdirSync(keep, { recursive: true });
const REQUESTS = Number(flag("requests") ?? 2000);
const WARMUP = Number(flag("warmup") ?? 3000);
const race = args.includes("--race");
const allThreads = args.includes("--all-threads");
const VARIANTS = race ? RACE_VARIANTS : HTTP_VARIANTS;
const POOL = Number(flag("pool") ?? (race ? 1 : 200));
const CONCURRENCY = race ? 10 : 8;
const log = (...a: unknown[]) => console.error(...a);

if (spawnSync("valgrind", ["--version"]).status !== 0) {
  log("valgrind is not installed (apt-get install valgrind): nothing measured");
  process.exit(1);
}

interface Counted {
  v: Variant;
  route: "a" | "b";
  /** Thousands of instructions per request. */
  kIr: number;
}

function get(port: number, agent: http.Agent, path: string, cookie?: string) {
  return new Promise<{ status: number; setCookie: string[] }>((resolve, reject) => {
    const req = http.get(
      { host: "127.0.0.1", port, path, agent, headers: cookie ? { cookie } : {} },
      (res) => {
        res.resume();
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, setCookie: res.headers["set-cookie"] ?? [] }),
        );
      },
    );
    req.on("error", reject);
  });
}

async function load(port: number, agent: http.Agent, path: string, pool: string[], n: number) {
  let i = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (i < n) {
        // No pool: every request without a cookie, so route A starts a new session each time.
        const cookie = pool.length === 0 ? undefined : pool[i % pool.length];
        i++;
        const r = await get(port, agent, path, cookie);
        if (r.status !== 200) failed++;
      }
    }),
  );
  if (failed > 0) throw new Error(`${failed} of ${n} requests to ${path} failed`);
}

/** One server under callgrind, instrumentation off until the warm-up (JIT) is done. */
async function measure(v: Variant): Promise<Counted[]> {
  const dir = mkdtempSync(join(tmpdir(), "kvsession-callgrind-"));
  // Pinned to core 1 where taskset exists, so a timing benchmark can run on core 0 meanwhile.
  const pin = spawnSync("taskset", ["-V"]).status === 0 ? ["taskset", "-c", "1"] : [];
  const child: ChildProcess = spawn(
    pin[0] ?? "valgrind",
    [
      ...pin.slice(1),
      ...(pin.length > 0 ? ["valgrind"] : []),
      ...callgrindArgs(join(dir, "out")),
      process.execPath,
      "--import",
      "tsx",
      join(here, "server.ts"),
      String(VARIANTS.indexOf(v)),
      ...(race ? ["race"] : []),
    ],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error("server did not start in 120 s")), 120_000);
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /READY (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once("exit", (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
    });
    const pool: string[] = [];
    while (pool.length < POOL) {
      const r = await get(port, agent, "/a");
      const c = r.setCookie.find((x) => x.startsWith(`${v.cookie}=`));
      if (c === undefined) throw new Error(`no ${v.cookie} cookie from /a (status ${r.status})`);
      pool.push(c.split(";")[0] as string);
    }
    const out: Counted[] = [];
    for (const route of race ? (["a"] as const) : v.routes) {
      await load(port, agent, `/${route}`, pool, WARMUP);
      execFileSync("callgrind_control", ["--instr=on", String(child.pid)], { stdio: "ignore" });
      await load(port, agent, `/${route}`, pool, REQUESTS);
      execFileSync("callgrind_control", ["--instr=off", String(child.pid)], { stdio: "ignore" });
      execFileSync("callgrind_control", ["--dump", String(child.pid)], { stdio: "ignore" });
      const k = (n: number) => `${(n / REQUESTS / 1000).toFixed(0)}k`;
      const name = `${variantKey(v)} ${route}`.replace(/[^A-Za-z0-9]+/g, "-");
      const seen =
        keep === undefined
          ? undefined
          : (f: string, text: string) => writeFileSync(join(keep, `callgrind.${name}.${f}`), text);
      let total: number;
      if (allThreads) {
        const t = threadTotals(dir, seen);
        total = t.main + t.helpers;
        log(
          `  ${variantKey(v)} route ${route.toUpperCase()}: main thread ${k(t.main)}, helper threads ${k(t.helpers)}`,
        );
      } else total = mainThreadTotal(dir, seen);
      out.push({ v, route, kIr: total / REQUESTS / 1000 });
      log(`  ${variantKey(v)} route ${route.toUpperCase()}: ${k(total)} instructions/request`);
    }
    return out;
  } finally {
    agent.destroy();
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (k: number) => `${Math.round(k).toLocaleString("en-US")}k`;
const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : "";

function render(rows: Counted[], date: string): string {
  const find = (fw: string, role: Variant["role"], route: "a" | "b", store?: Variant["store"]) =>
    rows.find(
      (r) =>
        r.v.framework === fw &&
        r.v.role === role &&
        r.route === route &&
        (store === undefined || r.v.store === store),
    );
  const lines = [
    "<!-- bench:http-instructions:start -->",
    "## HTTP: server instructions per request (callgrind)",
    "",
    `The servers of the \`bench:http\` section, one at a time under valgrind's callgrind, each answering ${WARMUP} warm-up requests and then ${REQUESTS} counted ones per route, ${CONCURRENCY} keep-alive connections, a pool of ${POOL} session cookies. Counted: ${allThreads ? "every thread of the server: the main thread (JavaScript, the event loop, Node's C++, scavenges) and V8's helper threads (optimising compiler, concurrent marking)" : "the server's main thread (JavaScript, the event loop, Node's C++, scavenges) — not V8's helper threads (optimising compiler, concurrent marking)"}, not the kernel, not Redis, not cache misses. Repeated runs agree closely where req/s moves a lot; but under valgrind the JIT warms up slowly, so longer warm-ups give lower counts for every server: compare rows of one run, not across runs with different settings. Lower is better; "peer / ours" and "limit / ours" above 1 mean ours does less work.`,
    "",
    "| framework | route | case | role | instructions / request | over bare | peer / ours | limit / ours |",
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    const bare = find(r.v.framework, "bare", r.route);
    const d = bare ? r.kIr - bare.kIr : 0;
    const over = bare && r !== bare ? `${d < 0 ? "-" : "+"}${fmt(Math.abs(d))}` : "";
    let peerOurs = "";
    let limitOurs = "";
    if (r.v.role === "ours") {
      const peer = find(r.v.framework, "peer", r.route, r.v.store);
      peerOurs = ratio(peer?.kIr, r.kIr);
      if (r.v.store === "redis") limitOurs = ratio(find(r.v.framework, "limit", r.route)?.kIr, r.kIr);
    }
    lines.push(
      `| ${r.v.framework} | ${r.route.toUpperCase()} | ${r.v.name} | ${r.v.role} | ${fmt(r.kIr)} | ${over} | ${peerOurs} | ${limitOurs} |`,
    );
  }
  lines.push(
    "",
    `Reproduce: \`pnpm --filter @kvsession/bench bench:http:instructions\` (needs valgrind; about 15 min). Last run ${date}.`,
    "<!-- bench:http-instructions:end -->",
  );
  return lines.join("\n");
}

async function main() {
  const client = createClient({ url: REDIS_URL });
  client.on("error", () => {});
  await client.connect();
  await client.flushDb();
  const rows: Counted[] = [];
  try {
    const picked = VARIANTS.filter((v) => pickedByOnly(variantKey(v)));
    log(`HTTP instructions: ${picked.length} servers under callgrind, ${REQUESTS} requests per route`);
    for (const v of picked) rows.push(...(await measure(v)));
  } finally {
    await client.flushDb();
    await client.quit();
  }
  const section = render(rows, new Date().toISOString().slice(0, 10));
  if (only !== undefined || race || allThreads || flag("pool") !== undefined) {
    log(section);
    log("--only, --race, --all-threads or --pool given: docs not updated");
    return;
  }
  const docs = join(root, "docs", "benchmarks.md");
  let md = readFileSync(docs, "utf8");
  const re = /<!-- bench:http-instructions:start -->[\s\S]*?<!-- bench:http-instructions:end -->/;
  md = re.test(md)
    ? md.replace(re, section)
    : md.replace("<!-- bench:http:end -->", `<!-- bench:http:end -->\n\n${section}`);
  writeFileSync(docs, md);
  log("wrote the bench:http-instructions section of docs/benchmarks.md");
}

await main();
