// Renders the bench:http-race section of docs/benchmarks.md from the same-cookie race's results.
import { median } from "../median.js";
import type { Variant } from "./apps.js";
import type { Sample } from "./servers.js";

export interface RaceSample {
  /** Responses with status 200: increments the server acknowledged. */
  acked: number;
  /** Responses with another status. */
  other: number;
  /** Connection errors and timeouts. */
  errors: number;
  /** Responses per second, first request to last response. */
  rps: number;
  /** Latency percentiles over the race's responses, in ms. */
  p50: number;
  p99: number;
  /** Commands the private redis-server ran per response during the race, a script's own included (Redis stacks only). */
  redisCommands?: number | undefined;
  /** CPU time per response during the race, in µs: the app server's, and the store server's (the private redis-server, or the PostgreSQL backends serving the app). */
  serverCpuUs?: number | undefined;
  /** The kernel's part of serverCpuUs. */
  serverSysUs?: number | undefined;
  storeCpuUs?: number | undefined;
  /** Share of the machine's CPU time stolen by the hypervisor during the race (`stealSince`). */
  steal?: number | undefined;
  /** The counter read back before and after the race. */
  before: number;
  after: number;
  /** acked - (after - before). */
  lost: number;
}

export interface RaceRow {
  framework: Variant["framework"];
  name: string;
  role: Variant["role"];
  store: Variant["store"];
  mode: "—" | "default" | NonNullable<Variant["mode"]>;
  /** The window in a fresh process: its first requests (after `RaceMeta.warmUp`, if any). */
  samples: RaceSample[];
  /** Per repeat, the requests/s of each band of `RaceMeta.requests` from that window on, up to `RaceMeta.warm` in all. */
  bands: number[][];
  /** The same window once the process has answered `RaceMeta.warm` requests (empty: not run). */
  warm: RaceSample[];
  failure?: string | undefined;
}

/** Ours in serialised mode (`name`) against the default mode, one [default, serialised] pair per round. */
export interface CalmRow {
  framework: Variant["framework"];
  name: string;
  route: "a" | "b";
  rounds: Array<[Sample, Sample]>;
}

export interface RaceMeta {
  date: string;
  node: string;
  cpus: string;
  repeats: number;
  requests: number;
  connections: number;
  warmUp: number;
  warm: number;
  warmRequests: number;
  seconds: number;
  /** Seconds of route A before the no-contention measurement. */
  calmWarmUp: number;
  calmConnections: number;
  pool: number;
  pinned: boolean;
  minutes: string;
  calmFailure?: string | undefined;
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—");
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : "—");
const x = (r: number | undefined) => (r === undefined || !Number.isFinite(r) ? "—" : `${r.toFixed(2)}x`);
const med = (xs: number[]) => (xs.length ? median(xs) : Number.NaN);
const FRAMEWORK = { express: "Express", fastify: "Fastify" } as const;
const STORE = { memory: "memory", sqlite: "SQLite", redis: "Redis", postgres: "PostgreSQL", none: "—" };
const MODE = {
  "—": "—",
  default: "default",
  serialised: "serialised",
  "serialised on A": "serialised on route A",
  update: "default, `session.update`",
  lazy: "default, `lazy: true`",
};

/** The peers' stores by kind: their own MemoryStore otherwise. */
const PEER_STORE: Partial<Record<RaceRow["store"], string>> = {
  redis: "connect-redis",
  postgres: "connect-pg-simple",
};

/** The peer every row is compared with: the framework's session library on connect-redis. */
const isRedisPeer = (r: RaceRow) => r.role === "peer" && r.store === "redis";

/**
 * Ratio of two rows' rates, one per round: the median of the per-round ratios (the rounds are
 * interleaved, so a round's two figures saw the same machine), or of the medians when a round failed.
 */
function ratio(as: number[], bs: number[]): number | undefined {
  if (as.length === 0 || bs.length === 0) return undefined;
  if (as.length === bs.length) return median(as.map((q, i) => q / bs[i]!));
  return med(as) / med(bs);
}

function rpsRatio(
  a: RaceRow,
  b: RaceRow | undefined,
  which: "samples" | "warm" = "samples",
): number | undefined {
  const rates = (r: RaceRow) => r[which].map((s) => s.rps);
  return ratio(rates(a), b === undefined ? [] : rates(b));
}

function library(r: RaceRow): string {
  if (r.role !== "peer") return "ours";
  return r.name.split(" + ")[0] as string;
}

function storeOf(r: RaceRow): string {
  if (r.role === "peer") return PEER_STORE[r.store] ?? "MemoryStore";
  return STORE[r.store];
}

/** Median Redis commands per response, where counted. */
function commandsOf(ss: RaceSample[]): string {
  const c = ss.map((s) => s.redisCommands).filter((n): n is number => n !== undefined);
  return c.length ? med(c).toFixed(2) : "";
}

/** Median server CPU per response with its system part, and the store server's beside it where measured. */
function cpuOf(ss: RaceSample[]): string {
  const measured = (f: (s: RaceSample) => number | undefined) =>
    ss.map(f).filter((n): n is number => n !== undefined && !Number.isNaN(n));
  const server = measured((s) => s.serverCpuUs);
  if (server.length === 0) return "—";
  const sys = measured((s) => s.serverSysUs);
  const store = measured((s) => s.storeCpuUs);
  const own = sys.length ? `${int(med(server))} (${int(med(sys))})` : int(med(server));
  return store.length ? `${own} + ${int(med(store))}` : own;
}

function raceTable(rows: RaceRow[], meta: RaceMeta): string {
  const lines = [
    `| framework | library | store | mode | acknowledged (of ${int(meta.requests)}) | lost | lost, range | req/s | vs peer + connect-redis | p50 ms | p99 ms | Redis commands / request | CPU µs / request, server (its system part) + store server |`,
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    const peer = rows.find((p) => p.framework === r.framework && isRedisPeer(p));
    const ss = r.samples;
    const acked = med(ss.map((s) => s.acked));
    const lost = med(ss.map((s) => s.lost));
    const lostShare = med(ss.map((s) => (s.acked > 0 ? s.lost / s.acked : 0)));
    const range = ss.length
      ? `${int(Math.min(...ss.map((s) => s.lost)))}–${int(Math.max(...ss.map((s) => s.lost)))}`
      : "—";
    lines.push(
      `| ${FRAMEWORK[r.framework]} | ${library(r)}${r.failure ? ` (failed: ${r.failure.slice(0, 120)})` : ""} | ${storeOf(r)} | ${MODE[r.mode]} | ${int(acked)} | ${int(lost)} (${ss.length ? `${Math.round(lostShare * 100)}%` : "—"}) | ${range} | ${int(med(ss.map((s) => s.rps)))} | ${r === peer ? "" : x(rpsRatio(r, peer))} | ${ms(med(ss.map((s) => s.p50)))} | ${ms(med(ss.map((s) => s.p99)))} | ${commandsOf(ss)} | ${cpuOf(ss)} |`,
    );
  }
  return lines.join("\n");
}

/** The second window, in a warm process: the columns that move with warm-up. */
function warmTable(rows: RaceRow[], meta: RaceMeta): string {
  const lines = [
    `| framework | library | store | mode | lost (of ${int(meta.warmRequests)}) | req/s | vs peer + connect-redis | p50 ms | p99 ms | CPU µs / request, server (its system part) + store server |`,
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows.filter((r) => r.warm.length > 0)) {
    const peer = rows.find((p) => p.framework === r.framework && isRedisPeer(p));
    const ss = r.warm;
    const lostShare = med(ss.map((s) => (s.acked > 0 ? s.lost / s.acked : 0)));
    lines.push(
      `| ${FRAMEWORK[r.framework]} | ${library(r)} | ${storeOf(r)} | ${MODE[r.mode]} | ${int(med(ss.map((s) => s.lost)))} (${Math.round(lostShare * 100)}%) | ${int(med(ss.map((s) => s.rps)))} | ${r === peer ? "" : x(rpsRatio(r, peer, "warm"))} | ${ms(med(ss.map((s) => s.p50)))} | ${ms(med(ss.map((s) => s.p99)))} | ${cpuOf(ss)} |`,
    );
  }
  return lines.join("\n");
}

/** Each band's requests (the last may be shorter), from the first window up to `meta.warm`. */
function bandSizes(meta: RaceMeta): number[] {
  const sizes = [meta.requests];
  for (let served = meta.warmUp + meta.requests; served < meta.warm; served += meta.requests)
    sizes.push(Math.min(meta.requests, meta.warm - served));
  return sizes;
}

/** A repeat's requests/s over all its bands: the requests over the time they took together. */
function overall(bands: number[], sizes: number[]): number {
  const n = sizes.reduce((a, b) => a + b, 0);
  return n / sizes.reduce((t, size, k) => t + size / bands[k]!, 0);
}

/** A row's rate per round in band `k`, or over all bands (`k` undefined); rounds with every band only. */
function bandRates(r: RaceRow, sizes: number[], k?: number): number[] {
  return r.bands
    .filter((xs) => xs.length === sizes.length)
    .map((xs) => (k === undefined ? overall(xs, sizes) : xs[k]!));
}

function bandRatio(a: RaceRow, b: RaceRow | undefined, sizes: number[], k?: number): number | undefined {
  return ratio(bandRates(a, sizes, k), b === undefined ? [] : bandRates(b, sizes, k));
}

/** How each process warms up: requests/s per band of requests from its start, and over all of them. */
function startupTable(rows: RaceRow[], meta: RaceMeta): string {
  const sizes = bandSizes(meta);
  const labels: string[] = [];
  let from = meta.warmUp;
  for (const size of sizes) {
    labels.push(`${int(from + 1)}–${int(from + size)}`);
    from += size;
  }
  const lines = [
    `| framework | library | store | mode | ${labels.join(" | ")} | all ${int(from - meta.warmUp)} |`,
    `| --- | --- | --- | --- |${" ---: |".repeat(sizes.length + 1)}`,
  ];
  for (const r of rows) {
    if (bandRates(r, sizes).length === 0) continue;
    const peer = rows.find((p) => p.framework === r.framework && isRedisPeer(p));
    const cell = (k?: number) => {
      const rate = med(bandRates(r, sizes, k));
      return r === peer ? int(rate) : `${int(rate)} (${x(bandRatio(r, peer, sizes, k))})`;
    };
    lines.push(
      `| ${FRAMEWORK[r.framework]} | ${library(r)} | ${storeOf(r)} | ${MODE[r.mode]} | ${sizes.map((_, k) => cell(k)).join(" | ")} | ${cell()} |`,
    );
  }
  return lines.join("\n");
}

function raceTargets(rows: RaceRow[], meta: RaceMeta): string[] {
  const sizes = bandSizes(meta);
  const all = sizes.reduce((a, b) => a + b, 0);
  const out: string[] = [];
  const verdict = (ok: boolean | undefined) =>
    ok === undefined ? "not measured" : ok ? "met" : "**not met**";
  for (const f of ["express", "fastify"] as const) {
    const own = rows.filter((r) => r.framework === f);
    const peer = own.find(isRedisPeer);
    const ser = own.filter((r) => r.mode === "serialised");
    const worst = (r: RaceRow) => {
      const all = [...r.samples, ...r.warm];
      return all.length ? Math.max(...all.map((s) => s.lost)) : undefined;
    };
    out.push(
      `- ${FRAMEWORK[f]}, serialised mode loses 0 on every store: ${verdict(ser.length ? ser.every((r) => worst(r) === 0) : undefined)} (most lost in one run: ${ser.map((r) => `${STORE[r.store]} ${worst(r) ?? "—"}`).join(", ")})`,
    );
    const dflt = own.filter((r) => r.mode === "default");
    if (peer)
      out.push(
        `- ${FRAMEWORK[f]}, default mode ≥ 1.0x ${peer.name}'s requests/s on one cookie: ${dflt
          .map((r) => {
            const q = rpsRatio(r, peer);
            const o = sizes.length > 1 ? bandRatio(r, peer, sizes) : undefined;
            const w = rpsRatio(r, peer, "warm");
            const one = (t: string, v: number | undefined) =>
              `${t} ${x(v)} (${verdict(v === undefined ? undefined : v >= 1)})`;
            return `${STORE[r.store]}: ${one(`first ${int(meta.requests)}`, q)}${o === undefined ? "" : `, ${one(`first ${int(all)}`, o)}`}${w === undefined ? "" : `, ${one("warm", w)}`}`;
          })
          .join(", ")}`,
      );
    out.push(
      `- ${FRAMEWORK[f]}, default mode against the peer on the same store (reported): ${dflt
        .map((r) => {
          const same = own.find((p) => p.role === "peer" && p.store === r.store);
          return same && `${STORE[r.store]} ${x(rpsRatio(r, same))} ${same.name}`;
        })
        .filter((t) => t !== undefined)
        .join(", ")}`,
    );
    out.push(
      `- ${FRAMEWORK[f]}, serialised mode's requests/s on one cookie (reported): ${ser
        .map((r) => {
          const d = dflt.find((x) => x.store === r.store);
          return `${STORE[r.store]} ${int(med(r.samples.map((s) => s.rps)))} (${x(d && rpsRatio(r, d))} the default mode)`;
        })
        .join(", ")}`,
    );
  }
  return out;
}

const where = (r: CalmRow) =>
  r.name.endsWith("mounted on route A only")
    ? "on route A, mounted there alone"
    : r.name.endsWith("on route A")
      ? r.framework === "express"
        ? "on route A, after the app-wide mount"
        : "on route A only"
      : "app-wide";

function calmTable(rows: CalmRow[]): string {
  const lines = [
    "| framework | serialised | route | default req/s | serialised req/s | serialised / default | per round | p99 ms, default / serialised | server CPU µs/req, default / serialised |",
    "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |",
  ];
  for (const r of rows) {
    const side = (i: 0 | 1, f: (s: Sample) => number) => med(r.rounds.map((p) => f(p[i])));
    const ratios = r.rounds.map(([d, s]) => s.rps / d.rps);
    lines.push(
      `| ${FRAMEWORK[r.framework]} | ${where(r)} | ${r.route.toUpperCase()} | ${int(side(0, (s) => s.rps))} | ${int(side(1, (s) => s.rps))} | ${x(med(ratios))} | ${ratios.map((q) => q.toFixed(2)).join(" ")} | ${side(0, (s) => s.p99)} / ${side(1, (s) => s.p99)} | ${int(side(0, (s) => s.cpuUs))} / ${int(side(1, (s) => s.cpuUs))} |`,
    );
  }
  return lines.join("\n");
}

function calmTargets(rows: CalmRow[]): string[] {
  return rows.map((r) => {
    const q = med(r.rounds.map(([d, s]) => s.rps / d.rps));
    const goal = r.route === "a" ? 0.9 : 0.95;
    const what =
      r.route === "a"
        ? "costs at most 10% of the default mode's req/s"
        : "costs nothing (5% allowed for noise)";
    return `- ${FRAMEWORK[r.framework]}, serialised ${where(r)}, route ${r.route.toUpperCase()}: ${what}: ${x(q)} — ${Number.isFinite(q) ? (q >= goal ? "met" : "**not met**") : "not measured"}`;
  });
}

/** How much of the machine's CPU time the hypervisor took away during the measured windows. */
function stealNote(race: RaceRow[], calm: CalmRow[]): string {
  const pct = (xs: number[]) =>
    `median ${(median(xs) * 100).toFixed(1)}%, most ${(Math.max(...xs) * 100).toFixed(0)}%`;
  const raced = race.flatMap((r) => [...r.samples, ...r.warm].map((s) => s.steal ?? Number.NaN));
  const calmed = calm.flatMap((r) => r.rounds.flat().map((s) => s.steal));
  const parts = [
    raced.length > 0 && raced.every(Number.isFinite) ? `the races' windows ${pct(raced)}` : undefined,
    calmed.length > 0 && calmed.every(Number.isFinite) ? `the no-contention ones ${pct(calmed)}` : undefined,
  ].filter((p) => p !== undefined);
  return parts.length === 0
    ? ""
    : ` CPU time the hypervisor gave to other guests while a window ran (steal, from /proc/stat; figures move with it, not with the code): ${parts.join("; ")}.`;
}

export function renderRaceSection(race: RaceRow[], calm: CalmRow[], meta: RaceMeta): string {
  const pin = meta.pinned
    ? "App server, the private `redis-server` and the PostgreSQL backends serving the app pinned to core 1, autocannon to core 0."
    : "Not pinned (no taskset).";
  return [
    "<!-- bench:http-race:start -->",
    "## HTTP: concurrent requests on one session (the same-cookie race)",
    "",
    `A browser tab's parallel \`fetch\` calls, two tabs or a retry storm send concurrent requests with one session cookie. Each stack serves route A, which reads a counter from the session and writes it back plus one (\`req.session.n = (req.session.n ?? 0) + 1\`, or \`get\`/\`set\` on Fastify), the way its users write it; the \`session.update\` rows write \`coreSession(req).update("n", (n) => (n ?? 0) + 1)\` instead. Per stack and repeat, in a fresh server process: ${meta.warmUp > 0 ? `${int(meta.warmUp)} requests on a warm-up session, then ` : ""}one new session, then ${meta.warmUp > 0 ? "" : "the process's first "}${int(meta.requests)} requests over ${meta.connections} keep-alive connections (autocannon), all carrying that session's cookie, then the counter read back. *Acknowledged* = responses with status 200; *lost* = acknowledged − (counter after − counter before). req/s = responses ÷ the time from the first request to the last response; p50/p99 over those responses; *Redis commands / request* = the commands the private \`redis-server\` ran during the race (INFO commandstats, a script's own commands included) ÷ responses; *CPU µs / request* = the user + system time the app server (in brackets its system time, the kernel's work for it: sockets, the event loop's waits) and, after the +, the store's server (the private \`redis-server\`, or the PostgreSQL backends serving the app: on one shared core their time is the app's too) used during the race ÷ responses, from /proc. Median of ${meta.repeats} repeats, rounds interleaved (every stack once per round, the order reversed every other round); *vs peer* is the median of the per-round ratios to the framework's session library on connect-redis. Stores: express-session's and @fastify/session's own MemoryStore, connect-redis on a private \`redis-server\` (no persistence, loopback), connect-pg-simple on the local PostgreSQL (a pool of 10), ours on the memory store, SQLite (a temporary file, WAL), the same \`redis-server\`, and the local PostgreSQL (a pool of 10). Ours runs in the default mode, in serialised mode (\`serialize: true\` for the whole app: requests of one session run load → handler → commit one at a time), and in the default mode with \`session.update\`. ${pin}`,
    "",
    raceTable(race, meta),
    "",
    ...(race.some((r) => r.bands.some((b) => b.length > 1))
      ? [
          `Then, in each of those processes, more of the same requests on another session, in bands of ${int(meta.requests)} up to ${int(meta.warm)} in all: how a process warms up. A fresh process spends its first thousands of requests compiling the code it runs, and each stack compiles its own code at its own point in them, so a ratio of one band is a point on two curves; the last column is each process's rate over all the bands (the requests over the time they took together). Cells: median req/s and, in brackets, the median of the per-round ratios to the peer on connect-redis:`,
          "",
          startupTable(race, meta),
          "",
        ]
      : []),
    ...(race.some((r) => r.warm.length > 0)
      ? [
          `Then, in each of those processes once it has answered ${int(meta.warm)} requests (the bands above), ${int(meta.warmRequests)} of the same requests on another new session (more than above: a warm server answers 2,000 requests in well under a second, too short for the machine's drift to even out). A fresh process spends much of its first few thousand requests compiling the code it runs, and a long-running server has long done that; the table above measures that start, this one the server as it runs afterwards:`,
          "",
          warmTable(race, meta),
          "",
        ]
      : []),
    "Targets (reported, not asserted):",
    "",
    ...raceTargets(race, meta),
    "",
    "### What serialised mode costs without contention",
    "",
    `Ours on Redis, the default mode against serialised mode, with ${int(meta.pool)} distinct session cookies (created beforehand, rotated per request: no two requests in flight share a session), autocannon with ${meta.calmConnections} connections. Per round and comparison, the two modes' servers run side by side, both fresh (started in the other order every other round), and each first answers route A for ${meta.calmWarmUp} s (a fresh process spends its first seconds compiling what it runs, which a running server has long done); then each route gets ${meta.seconds} one-second slices per server, alternating between the two, so the machine's drift from minute to minute falls on both alike. A server process's speed still differs from the next one's (by up to a tenth on Express), which the rounds average: *per round* is each round's ratio, and the ratio column their median (of ${meta.repeats}). Route A reads and increments the counter; route B answers "ok" without touching the session (its requests still carry a session cookie). Serialised mode is turned on for the whole app (\`serialize: true\` in the options), or on route A only: on Fastify with the route's \`config: { session: { serialize: true } }\`; on Express with \`session.serialize()\` mounted on the route, either after the app-wide middleware (which has loaded the session already, so route A reads it again under the lease) or on the route alone, with no app-wide mount (compared there with the default-mode middleware mounted on the route alone, and route B then has no session middleware in either mode). Both adapters load the session before the handler of every request that carries a cookie (Fastify's \`lazy: true\` API opens it on first use instead), so app-wide serialised mode takes the lease on route B too. Server CPU is the server process's user + system time per request (from /proc).${meta.calmFailure ? ` A measurement failed: ${meta.calmFailure}.` : ""}`,
    "",
    calmTable(calm),
    "",
    "Targets (reported, not asserted):",
    "",
    ...calmTargets(calm),
    "",
    `Reproduce: \`pnpm bench:http:race\` (about ${Math.max(1, Math.round(Number(meta.minutes)))} min here; \`--quick\` for a single repeat, \`--only 'text|text'\` for the stacks whose names contain one of the texts). Last run ${meta.date}, Node ${meta.node}, ${meta.cpus}.${stealNote(race, calm)}`,
    "<!-- bench:http-race:end -->",
  ].join("\n");
}
