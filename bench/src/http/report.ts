// Renders the bench:http section of docs/benchmarks.md from the measured rows.

export interface Row {
  framework: "express" | "fastify";
  name: string;
  role: "ours" | "limit" | "peer" | "bare";
  route: "a" | "b";
  store: "none" | "memory" | "redis" | "sqlite" | "postgres";
  /** Median requests per second over the repeats. */
  rps: number;
  /** Median of the repeats' 99th-percentile latency, in ms. */
  p99: number;
  /** Median server CPU time (user + system) per request, in µs; NaN where /proc is missing. */
  cpuUs: number;
  errors: number;
  runs: number;
  failure?: string | undefined;
}

export interface Meta {
  date: string;
  node: string;
  cpus: string;
  seconds: number;
  repeats: number;
  connections: number;
  pool: number;
  prefill: number;
  pinned: boolean;
  minutes: string;
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—");
const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : undefined;
const x = (r: number | undefined) => (r === undefined ? "—" : `${r.toFixed(2)}x`);

const FRAMEWORK = { express: "Express", fastify: "Fastify" } as const;

export function find(rows: Row[], framework: string, name: string, route: "a" | "b"): Row | undefined {
  return rows.find((r) => r.framework === framework && r.name === name && r.route === route);
}

/** Every row in one table: each framework's route A, then route B, then the scale rows. */
function table(rows: Row[]): string {
  const lines = [
    "| framework | route | case | role | req/s | p99 ms | server CPU µs/req | vs bare | vs peer | vs limit | errors |",
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const isScale = (r: Row) => r.name.includes("stored sessions)");
  for (const framework of ["express", "fastify"] as const) {
    const own = rows.filter((r) => r.framework === framework && !isScale(r));
    for (const route of ["a", "b"] as const) {
      const bare = own.find((r) => r.role === "bare" && r.route === route);
      const limit = own.find((r) => r.role === "limit" && r.route === route);
      for (const r of own.filter((x) => x.route === route)) {
        // The peer with the same store (memory or Redis), when there is one.
        const peer = own.find((p) => p.role === "peer" && p.route === route && p.store === r.store);
        lines.push(
          `| ${FRAMEWORK[framework]} | ${route.toUpperCase()} | ${r.name}${r.failure ? ` (failed: ${r.failure})` : ""} | ${r.role} | ${fmt(r.rps)} | ${Number.isFinite(r.p99) ? r.p99 : "—"} | ${fmt(r.cpuUs)} | ${r.role === "bare" ? "" : x(ratio(r.rps, bare?.rps))} | ${r.role === "ours" ? x(ratio(r.rps, peer?.rps)) : ""} | ${r.role === "ours" || r.role === "peer" ? x(ratio(r.rps, limit?.rps)) : ""} | ${r.errors} |`,
        );
      }
    }
  }
  for (const r of rows.filter(isScale))
    lines.push(
      `| ${FRAMEWORK[r.framework]} | ${r.route.toUpperCase()} | ${r.name} | ${r.role} | ${fmt(r.rps)} | ${Number.isFinite(r.p99) ? r.p99 : "—"} | ${fmt(r.cpuUs)} |  |  |  | ${r.errors} |`,
    );
  return lines.join("\n");
}

export function targets(rows: Row[]): string[] {
  const out: string[] = [];
  const check = (label: string, r: number | undefined, goal: number) =>
    out.push(
      `- ${label}: ${x(r)} (target >= ${goal}x) — ${r === undefined ? "not measured" : r >= goal ? "met" : "**not met**"}`,
    );
  const rps = (f: string, n: string, route: "a" | "b" = "a") => find(rows, f, n, route)?.rps;
  check(
    "Express, memory: ours / express-session + MemoryStore",
    ratio(rps("express", "ours, memory"), rps("express", "express-session + MemoryStore")),
    1.3,
  );
  check(
    "Fastify, memory: ours / @fastify/session",
    ratio(rps("fastify", "ours, memory"), rps("fastify", "@fastify/session (memory)")),
    2,
  );
  check(
    "Express, Redis: ours / hand-written limit",
    ratio(rps("express", "ours, Redis"), rps("express", "hand-written Redis GET + SET")),
    0.9,
  );
  check(
    "Fastify, Redis: ours / hand-written limit",
    ratio(rps("fastify", "ours, Redis"), rps("fastify", "hand-written Redis GET + SET")),
    0.9,
  );
  check(
    "Express, Redis: ours / express-session + connect-redis",
    ratio(rps("express", "ours, Redis"), rps("express", "express-session + connect-redis")),
    1.2,
  );
  // Route B must cost next to nothing where the session is opened on use: Express mounted on the
  // routes that use it, Fastify's `lazy: true`. Mounted app-wide (Express) or loading before the hooks
  // (Fastify's default, as @fastify/session), every request with a cookie reads the store, by design.
  for (const [f, n] of [
    ["express", "ours, memory, mounted on route A only"],
    ["express", "ours, Redis, mounted on route A only"],
    ["fastify", "ours, memory, lazy"],
  ] as const)
    check(`Route B, ${f} ${n} / bare`, ratio(rps(f, n, "b"), rps(f, "bare", "b")), 0.95);
  for (const [f, n] of [
    ["express", "ours, memory"],
    ["express", "ours, Redis"],
    ["fastify", "ours, memory"],
    ["fastify", "ours, Redis"],
  ] as const)
    out.push(
      `- Route B, ${f} ${n} / bare (loads the session by design; reference): ${x(ratio(rps(f, n, "b"), rps(f, "bare", "b")))}`,
    );
  // The same comparisons in server CPU per request, which the load generator's own limit does not cap.
  const cpu = (f: string, n: string) => find(rows, f, n, "a")?.cpuUs;
  for (const [f, ours, peer] of [
    ["express", "ours, memory", "express-session + MemoryStore"],
    ["express", "ours, Redis", "express-session + connect-redis"],
    ["fastify", "ours, memory", "@fastify/session (memory)"],
  ] as const) {
    const o = cpu(f, ours);
    const p = cpu(f, peer);
    const b = cpu(f, "bare");
    if (o === undefined || p === undefined || !Number.isFinite(o) || !Number.isFinite(p)) continue;
    const extra =
      b !== undefined && Number.isFinite(b)
        ? `; over bare ${fmt(b)}: ours +${fmt(o - b)}, peer +${fmt(p - b)}`
        : "";
    out.push(
      `- ${f}, route A, server CPU per request: ${ours} ${fmt(o)} µs, ${peer} ${fmt(p)} µs (peer / ours = ${x(ratio(p, o))}${extra})`,
    );
  }
  for (const f of ["express", "fastify"] as const) {
    const small = rows.find((r) => r.framework === f && r.name === "ours, Redis (~1k stored sessions)");
    const big = rows.find(
      (r) => r.framework === f && /^ours, Redis \([\d.]+[kM] stored sessions\)$/.test(r.name),
    );
    if (small && big)
      out.push(
        `- ${f}, ours on Redis, ~1k → ${big.name.slice("ours, Redis (".length, -1)}: req/s ${x(ratio(big.rps, small.rps))} (${fmt(small.rps)} → ${fmt(big.rps)}), p99 ${small.p99} → ${big.p99} ms`,
      );
  }
  return out;
}

export function renderSection(rows: Row[], meta: Meta): string {
  return [
    "<!-- bench:http:start -->",
    "## HTTP: session middleware in Express and Fastify",
    "",
    `Each framework bare (no session library), with its session peer, with ours, and with a hand-written Redis \`GET\` + \`SET\` per request (the limit). Route A reads a counter from the session and increments it, with ${meta.pool.toLocaleString("en-US")} distinct session cookies created beforehand and rotated per request; route B answers "ok" without touching the session (its requests still carry a session cookie). autocannon, ${meta.connections} connections, ${meta.seconds} s per measurement, median of ${meta.repeats}, each in a fresh server process, every server once per round; ${meta.pinned ? "server and redis-server pinned to core 1, autocannon to core 0" : "not pinned (no taskset)"}. autocannon tops out near 85k req/s on one core, so the bare rows are lower bounds. Express code reads \`req.session\` synchronously, so ours mounted app-wide loads the session before every request that carries a cookie; mounted on route A only (the documented way to keep other routes free of store I/O) it runs exactly the bare app's code on route B, so that row's distance from bare is the run's noise. Fastify's default API loads the session before the route's hooks, as @fastify/session does, so route B reads the store too; its \`lazy: true\` API opens the session on first use. Server CPU is the server process's user + system time per request (from /proc): unlike req/s it is not capped by the load generator.${meta.prefill > 0 ? ` The last rows run ours on Redis alternately against the bench DB (~1k sessions) and a DB of the same Redis pre-filled with ${meta.prefill.toLocaleString("en-US")} more session records.` : ""}`,
    "",
    "![HTTP benchmark](http-bench.svg)",
    "",
    table(rows),
    "",
    "Targets (reported, not asserted):",
    "",
    ...targets(rows),
    "",
    `Reproduce: \`pnpm bench:http\` (about ${Math.max(1, Math.round(Number(meta.minutes)))} min; \`--quick\` for a smoke run, \`--no-scale\` without the pre-filled DB). Last run ${meta.date}, Node ${meta.node}, ${meta.cpus}.`,
    "<!-- bench:http:end -->",
  ].join("\n");
}
