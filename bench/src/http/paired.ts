// Paired CPU per request: two app servers of the HTTP benchmark share core 1 and are loaded at the same
// time (two autocannon instances here, on core 0), round after round in fresh processes.
//   pnpm --filter @kvsession/bench bench:http:paired              every pair (5 rounds of 5 s, ~8 min)
//   ... --rounds N --seconds N     ... --only fastify   pairs whose names contain the text
// Why: this VM's speed moves by up to 2x within minutes, so two servers measured one after the other can
// differ by that much for no reason of their own. Measured side by side, a slowdown hits both alike and
// the ratio of their CPU time per request (user + system, from /proc) holds. That ratio is what req/s
// would show for two CPU-bound servers; it leaves out what redis-server spends for them.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "redis";
import { median } from "../median.js";
import { REDIS_URL, VARIANTS, type Variant, variantKey } from "./apps.js";
import { flag, repoRoot as root } from "./cli.js";
import { cookiePool, load, pinned, type Sample, startServer, stopServer } from "./servers.js";

const rounds = Number(flag("rounds") ?? 5);
const seconds = Number(flag("seconds") ?? 5);
const only = flag("only");
const log = (...a: unknown[]) => console.error(...a);

interface Pair {
  ours: string;
  other: string;
  /** The target as a CPU ratio ours / other (≤), or undefined for a reference pair. */
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
];

const byKey = (key: string): Variant => {
  const v = VARIANTS.find((x) => variantKey(x) === key);
  if (v === undefined) throw new Error(`no variant "${key}"`);
  return v;
};

/** One round: both servers fresh, cookie pools, a joint warm-up, then route A on both at once. */
async function round(a: Variant, b: Variant): Promise<[Sample, Sample]> {
  const servers = await Promise.all([a, b].map((v) => startServer(VARIANTS.indexOf(v))));
  try {
    const bases = servers.map((s) => `http://127.0.0.1:${s.port}`);
    const pools = await Promise.all([a, b].map((v, i) => cookiePool(bases[i]!, v.cookie)));
    await Promise.all(bases.map((base, i) => load(base, "/a", pools[i]!, 2)));
    const [sa, sb] = await Promise.all(
      bases.map((base, i) => load(base, "/a", pools[i]!, seconds, servers[i]!.child.pid)),
    );
    return [sa!, sb!];
  } finally {
    await Promise.all(servers.map((s) => stopServer(s.child)));
  }
}

interface Result {
  pair: Pair;
  ratios: number[];
  oursUs: number;
  otherUs: number;
}

async function main() {
  if (!pinned) log("no taskset or fewer than 2 cores: the servers are not pinned, ratios will be noisier");
  const picked = PAIRS.filter((p) => only === undefined || `${p.ours} ${p.other}`.includes(only));
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  await redis.flushDb();
  const results: Result[] = [];
  try {
    for (const pair of picked) {
      const ratios: number[] = [];
      const us: Array<[number, number]> = [];
      for (let r = 0; r < rounds; r++) {
        const [ours, other] = await round(byKey(pair.ours), byKey(pair.other));
        if (ours.errors > 0 || other.errors > 0) throw new Error(`${pair.ours} / ${pair.other}: errors`);
        ratios.push(ours.cpuUs / other.cpuUs);
        us.push([ours.cpuUs, other.cpuUs]);
        log(
          `  ${pair.ours} ${ours.cpuUs.toFixed(0)} µs/req vs ${pair.other} ${other.cpuUs.toFixed(0)} µs/req: ${(ours.cpuUs / other.cpuUs).toFixed(3)}`,
        );
      }
      results.push({
        pair,
        ratios,
        oursUs: median(us.map((u) => u[0])),
        otherUs: median(us.map((u) => u[1])),
      });
      await redis.flushDb();
    }
  } finally {
    await redis.flushDb();
    await redis.quit();
  }
  const stamp = new Date().toISOString().slice(0, 16).replace("T", " ");
  const lines = [
    "## HTTP, paired: CPU per request of two servers loaded side by side",
    "",
    `Measured ${stamp} UTC with \`pnpm --filter @kvsession/bench bench:http:paired\`: route A, ${rounds} rounds of ${seconds} s per pair, each round two fresh server processes sharing core 1${pinned ? "" : " (not pinned: no taskset)"} and loaded at the same time (64 connections each, 1000 session cookies each, after a 2 s warm-up). The figure is the server's own CPU time (user + system, /proc) per request; ours / other below 1 means ours spends less. It leaves out redis-server's CPU (the Redis rows' store work). Run side by side, a change in machine speed hits both servers alike, which the one-after-the-other req/s of the section above cannot promise. The price: the two also share the core's caches, which costs the server with the larger working set more — the bare apps' rows read better here than in the section above (Fastify ours / bare 1.81 here, 45 / 33 µs = 1.36 there), so read the bare pairs as an upper bound of what the middleware adds, and the pairs of two session libraries as the comparison this mode is for.`,
    "",
    "| ours | other | ours µs/req | other µs/req | ours / other (median) | rounds | as req/s | target |",
    "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |",
  ];
  for (const r of results) {
    const m = median(r.ratios);
    const t = r.pair.target;
    const verdict = t === undefined ? "reference" : `${t.text}: ${m <= t.ratio ? "met" : "**not met**"}`;
    lines.push(
      `| ${r.pair.ours} | ${r.pair.other} | ${r.oursUs.toFixed(0)} | ${r.otherUs.toFixed(0)} | ${m.toFixed(2)} | ${r.ratios.map((x) => x.toFixed(2)).join(" ")} | ${(1 / m).toFixed(2)}x | ${verdict} |`,
    );
  }
  const section = lines.join("\n");
  console.log(section);
  const docs = join(root, "docs", "benchmarks.md");
  const start = "<!-- bench:http-paired:start -->";
  const end = "<!-- bench:http-paired:end -->";
  let md = readFileSync(docs, "utf8");
  const block = `${start}\n${section}\n${end}`;
  if (md.includes(start)) md = md.replace(new RegExp(`${start}[\\s\\S]*?${end}`), block);
  else {
    const after = "<!-- bench:http:end -->";
    md = md.includes(after) ? md.replace(after, `${after}\n\n${block}`) : `${md}\n${block}\n`;
  }
  writeFileSync(docs, md);
}

await main();
