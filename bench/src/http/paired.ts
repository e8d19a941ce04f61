// Paired CPU per request: two app servers of the HTTP benchmark share core 1 and are loaded at the same
// time (two autocannon instances here, on core 0), round after round in fresh processes.
//   pnpm --filter @kvsession/bench bench:http:paired              every pair (5 rounds of 5 s, ~17 min)
//   ... --prefill N   sessions pre-filled into the big Redis DB of the scale pairs (default 1,000,000)
//   ... --rounds N --seconds N     ... --only fastify   pairs whose names (or "/b", or "scale") contain the text;
//   a subset is printed, not written to docs/benchmarks.md
//   ... --alone   each round loads the two servers one after the other (order alternating by round) instead of
//   at once: each has core 1 to itself, as a deployed server has, and the two measurements of a round are
//   seconds apart. Its own section in docs/benchmarks.md ("HTTP, alternated").
// Why: a shared VM's speed moves within minutes, so two servers measured one after the other can
// differ for no reason of their own. Measured side by side, a slowdown hits both alike and
// the ratio of their CPU time per request (user + system, from /proc) holds. That ratio is what req/s
// would show for two CPU-bound servers; it leaves out what redis-server spends for them.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "redis";
import { median } from "../median.js";
import { BIG_REDIS_URL, REDIS_URL, VARIANTS, type Variant, variantKey } from "./apps.js";
import { flag, repoRoot as root } from "./cli.js";
import {
  cookiePool,
  load,
  pinLoadGenerator,
  pinned,
  prefillSessions,
  type Sample,
  startServer,
  stopServer,
} from "./servers.js";

pinLoadGenerator();

const rounds = Number(flag("rounds") ?? 5);
const PREFILL = Number(flag("prefill") ?? 1_000_000);
const bigLabel = ` (${PREFILL >= 1e6 ? `${PREFILL / 1e6}M` : `${PREFILL / 1e3}k`} more stored sessions)`;
const seconds = Number(flag("seconds") ?? 5);
const only = flag("only");
const alone = process.argv.includes("--alone");
const log = (...a: unknown[]) => console.error(...a);

interface Pair {
  ours: string;
  other: string;
  /** The route loaded on both: "/a" (reads and writes the session) unless given. */
  path?: "/a" | "/b";
  /** A scale pair: the same server twice, ours on a Redis DB pre-filled with PREFILL more sessions. */
  scale?: boolean;
  /** The issue's target as a CPU ratio ours / other (≤), or undefined for a reference pair. */
  target?: { ratio: number; text: string };
}

const PAIRS: Pair[] = [
  {
    ours: "express: ours, memory",
    other: "express: express-session + MemoryStore",
    target: { ratio: 1 / 1.3, text: "≥ 1.3x express-session" },
  },
  { ours: "express: ours, memory", other: "express: bare" },
  {
    ours: "express: ours, Redis",
    other: "express: express-session + connect-redis",
    target: { ratio: 1 / 1.2, text: "≥ 1.2x express-session + connect-redis" },
  },
  {
    ours: "express: ours, Redis",
    other: "express: hand-written Redis GET + SET",
    target: { ratio: 1 / 0.9, text: "≥ 0.9x the hand-written limit" },
  },
  {
    ours: "fastify: ours, memory",
    other: "fastify: @fastify/session (memory)",
    target: { ratio: 1 / 2, text: "≥ 2x @fastify/session" },
  },
  { ours: "fastify: ours, memory", other: "fastify: bare" },
  {
    ours: "fastify: ours, Redis",
    other: "fastify: hand-written Redis GET + SET",
    target: { ratio: 1 / 0.9, text: "≥ 0.9x the hand-written limit" },
  },
  // Route B never touches the session, so the session must cost next to nothing there. Express code
  // reads req.session synchronously, so there (as with express-session) the session is loaded before
  // the handler wherever the middleware is mounted: the Express way is to mount it on the routes that
  // use it. The app-wide mount is kept as a reference row. Fastify's default loads before the hooks too,
  // as @fastify/session does (a reference row); its `lazy: true` API opens the session on first use.
  {
    ours: "express: ours, memory, mounted on route A only",
    other: "express: bare",
    path: "/b",
    target: { ratio: 1 / 0.95, text: "≥ 0.95x bare on route B" },
  },
  { ours: "express: ours, memory", other: "express: bare", path: "/b" },
  // Flat from 1 thousand to 1 million stored sessions: here what counts is req/s and p99 (the store's
  // own work happens in redis-server, outside the app's CPU), side by side on the same Redis instance.
  { ours: "express: ours, Redis", other: "express: ours, Redis", scale: true },
  { ours: "fastify: ours, Redis", other: "fastify: ours, Redis", scale: true },
  {
    ours: "fastify: ours, memory, lazy",
    other: "fastify: bare",
    path: "/b",
    target: { ratio: 1 / 0.95, text: "≥ 0.95x bare on route B" },
  },
  { ours: "fastify: ours, memory", other: "fastify: bare", path: "/b" },
];

const byKey = (key: string): Variant => {
  const v = VARIANTS.find((x) => variantKey(x) === key);
  if (v === undefined) throw new Error(`no variant "${key}"`);
  return v;
};

/**
 * One round: both servers fresh, cookie pools, a warm-up, then the pair's route on both at once (or,
 * with --alone, on one and then the other, `a` first in even rounds).
 */
async function round(
  a: Variant,
  b: Variant,
  path: string,
  scale: boolean,
  index: number,
): Promise<[Sample, Sample]> {
  const envs = [scale ? { BENCH_REDIS_URL: BIG_REDIS_URL } : {}, {}];
  const servers = await Promise.all([a, b].map((v, i) => startServer(VARIANTS.indexOf(v), envs[i])));
  try {
    const bases = servers.map((s) => `http://127.0.0.1:${s.port}`);
    const pools = await Promise.all([a, b].map((v, i) => cookiePool(bases[i]!, v.cookie)));
    if (alone) {
      const order = index % 2 === 0 ? [0, 1] : [1, 0];
      const out: Sample[] = [];
      for (const i of order) {
        await load(bases[i]!, path, pools[i]!, 2);
        out[i] = await load(bases[i]!, path, pools[i]!, seconds, servers[i]!.child.pid);
      }
      return [out[0]!, out[1]!];
    }
    await Promise.all(bases.map((base, i) => load(base, path, pools[i]!, 2)));
    const [sa, sb] = await Promise.all(
      bases.map((base, i) => load(base, path, pools[i]!, seconds, servers[i]!.child.pid)),
    );
    return [sa!, sb!];
  } finally {
    await Promise.all(servers.map((s) => stopServer(s.child)));
  }
}

interface Result {
  pair: Pair;
  /** One [ours, other] sample per round. */
  samples: Array<[Sample, Sample]>;
}

const ratiosOf = (r: Result, f: (s: Sample) => number) => r.samples.map(([a, b]) => f(a) / f(b));
const cpu = (s: Sample) => s.cpuUs;
const FLAT = { rps: 0.9, p99: 1.2 };

async function main() {
  if (!pinned) log("no taskset or fewer than 2 cores: the servers are not pinned, ratios will be noisier");
  const picked = PAIRS.filter(
    (p) =>
      only === undefined || `${p.ours} ${p.other} ${p.path ?? "/a"}${p.scale ? " scale" : ""}`.includes(only),
  );
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  await redis.flushDb();
  const big = picked.some((p) => p.scale) ? createClient({ url: BIG_REDIS_URL }) : undefined;
  const results: Result[] = [];
  try {
    if (big !== undefined) {
      await big.connect();
      await big.flushDb();
      log(`pre-filling ${PREFILL} sessions into ${BIG_REDIS_URL}…`);
      await prefillSessions(big, PREFILL);
    }
    for (const pair of picked) {
      const samples: Array<[Sample, Sample]> = [];
      for (let r = 0; r < rounds; r++) {
        const [ours, other] = await round(
          byKey(pair.ours),
          byKey(pair.other),
          pair.path ?? "/a",
          pair.scale === true,
          r,
        );
        if (ours.errors > 0 || other.errors > 0) throw new Error(`${pair.ours} / ${pair.other}: errors`);
        samples.push([ours, other]);
        log(
          `  ${pair.path ?? "/a"} ${pair.ours}${pair.scale ? bigLabel : ""} ${ours.cpuUs.toFixed(0)} µs/req ${Math.round(ours.rps)} req/s p99 ${ours.p99} ms vs ${pair.other} ${other.cpuUs.toFixed(0)} µs/req ${Math.round(other.rps)} req/s p99 ${other.p99} ms: ${(ours.cpuUs / other.cpuUs).toFixed(3)}`,
        );
      }
      results.push({ pair, samples });
      await redis.flushDb();
    }
  } finally {
    await redis.flushDb();
    await redis.quit();
    if (big?.isOpen) {
      await big.flushDb();
      await big.quit();
    }
  }
  const date = new Date().toISOString().slice(0, 10);
  // What the two modes' introductions share.
  const routes = "route A (reads and writes the session) unless the row says B (never touches it)";
  const figure =
    "The figure is the server's own CPU time (user + system, /proc) per request; ours / other below 1 means ours spends less";
  const core = `core 1${pinned ? "" : " (not pinned: no taskset)"}`;
  const lines = alone
    ? [
        "## HTTP, alternated: CPU per request of each server loaded alone",
        "",
        `The servers of the \`bench:http\` section, two at a time: ${routes}, ${rounds} rounds per pair; each round starts two fresh server processes on ${core}, then loads one and then the other, each alone for ${seconds} s after a 2 s warm-up (64 connections, 1000 session cookies), the order alternating from round to round. ${figure}; the ratio is taken within each round (its two loads are seconds apart) and the median over the rounds is the verdict. It leaves out redis-server's CPU. Each server has the core and its caches to itself while measured, as a deployed server does, and the alternation keeps the machine's slower drifts out of the ratios; what moves between the two loads of one round shows in the rounds column.`,
      ]
    : [
        "## HTTP, paired: CPU per request of two servers loaded side by side",
        "",
        `The servers of the \`bench:http\` section, two at a time: ${routes}, ${rounds} rounds of ${seconds} s per pair, each round two fresh server processes sharing ${core} and loaded at the same time (64 connections each, 1000 session cookies each, after a 2 s warm-up). ${figure}. It leaves out redis-server's CPU (the Redis rows' store work). Run side by side, a change in machine speed hits both servers alike, which one-after-the-other req/s cannot promise. The price: the two also share the core's caches, which costs the server with the larger working set more, so read the pairs against a bare app as an upper bound of what the middleware adds, and the pairs of two session libraries as the comparison this mode is for.`,
      ];
  const paired = results.filter((x) => !x.pair.scale);
  if (paired.length > 0)
    lines.push(
      "",
      "| ours | other | route | ours µs/req | other µs/req | ours / other (median) | rounds | as req/s | target |",
      "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- |",
    );
  for (const r of paired) {
    const ratios = ratiosOf(r, cpu);
    const m = median(ratios);
    const t = r.pair.target;
    const verdict = t === undefined ? "reference" : `${t.text}: ${m <= t.ratio ? "met" : "**not met**"}`;
    lines.push(
      `| ${r.pair.ours} | ${r.pair.other} | ${r.pair.path === "/b" ? "B" : "A"} | ${median(r.samples.map((s) => s[0].cpuUs)).toFixed(0)} | ${median(r.samples.map((s) => s[1].cpuUs)).toFixed(0)} | ${m.toFixed(2)} | ${ratios.map((x) => x.toFixed(2)).join(" ")} | ${(1 / m).toFixed(2)}x | ${verdict} |`,
    );
  }
  const scaled = results.filter((x) => x.pair.scale);
  if (scaled.length > 0) {
    lines.push(
      "",
      `Scale: the same server twice, ${alone ? "one after the other" : "side by side"} on the same redis-server, one on a DB pre-filled with ${PREFILL.toLocaleString("en-US")} more sessions. Flat means, as medians over the rounds, req/s of the big one ≥ ${FLAT.rps}x and p99 ≤ ${FLAT.p99}x the small one's (autocannon's p99 is in whole ms).`,
      "",
      "| server | req/s, big / small (medians) | p99 ms, big / small (medians) | CPU µs/req, big / small | req/s ratio per round | p99 ratio per round | flat? (median ratios) |",
      "| --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const r of scaled) {
      const rpsRatios = ratiosOf(r, (s) => s.rps);
      const p99Ratios = ratiosOf(r, (s) => Math.max(1, s.p99));
      const rps = median(rpsRatios);
      const p99 = median(p99Ratios);
      const side = (i: 0 | 1, f: (s: Sample) => number) => median(r.samples.map((s) => f(s[i])));
      const flat = rps >= FLAT.rps && p99 <= FLAT.p99;
      const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
      lines.push(
        `| ${r.pair.ours} | ${side(0, (s) => s.rps).toFixed(0)} / ${side(1, (s) => s.rps).toFixed(0)} | ${side(0, (s) => s.p99)} / ${side(1, (s) => s.p99)} | ${side(0, cpu).toFixed(0)} / ${side(1, cpu).toFixed(0)} | ${list(rpsRatios)} | ${list(p99Ratios)} | ${flat ? "met" : "**not met**"} (req/s ${rps.toFixed(2)}x, p99 ${p99.toFixed(2)}x) |`,
      );
    }
  }
  lines.push(
    "",
    `Reproduce: \`pnpm bench:http:paired${alone ? " --alone" : ""}\` (\`--rounds N\`, \`--seconds N\`, \`--prefill N\`). Last run ${date}.`,
  );
  const section = lines.join("\n");
  console.log(section);
  if (only !== undefined) {
    log("--only ran a subset: docs/benchmarks.md is left as it is (a full run rewrites its section)");
    return;
  }
  const docs = join(root, "docs", "benchmarks.md");
  const mark = alone ? "http-alone" : "http-paired";
  const start = `<!-- bench:${mark}:start -->`;
  const end = `<!-- bench:${mark}:end -->`;
  let md = readFileSync(docs, "utf8");
  const block = `${start}\n${section}\n${end}`;
  if (md.includes(start)) md = md.replace(new RegExp(`${start}[\\s\\S]*?${end}`), block);
  else {
    // New sections go after the one-after-the-other section: the alternated one, then the side-by-side one.
    const after =
      !alone && md.includes("<!-- bench:http-alone:end -->")
        ? "<!-- bench:http-alone:end -->"
        : "<!-- bench:http:end -->";
    md = md.includes(after) ? md.replace(after, `${after}\n\n${block}`) : `${md}\n${block}\n`;
  }
  writeFileSync(docs, md);
}

await main();
