// What the HTTP benchmark scripts share: app servers in child processes, the cookie pool, the load.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import type { createClient } from "redis";
import { OURS_NAMESPACE } from "./apps.js";
import { httpDir as here, repoRoot as root } from "./cli.js";

/** Servers go to core 1, load generators to core 0, when the machine has two cores and taskset. */
export const pinned = spawnSync("taskset", ["-V"]).status === 0 && cpus().length >= 2;
/** Distinct session cookies created before a measurement and rotated per request. */
export const POOL = 1000;
export const CONNECTIONS = 64;

/**
 * Starts server `index` of VARIANTS (or of RACE_VARIANTS with `list` "race") in a child process.
 * `SERVER_FLAGS` in the environment adds Node.js flags to it (`--cpu-prof`, say, to see where its time goes).
 */
export async function startServer(
  index: number,
  env: NodeJS.ProcessEnv = {},
  list: "main" | "race" = "main",
): Promise<{ port: number; child: ChildProcess }> {
  const cmd = [
    process.execPath,
    ...(process.env.SERVER_FLAGS ? process.env.SERVER_FLAGS.split(" ") : []),
    "--import",
    "tsx",
    join(here, "server.ts"),
    String(index),
    ...(list === "race" ? ["race"] : []),
  ];
  const [file, ...rest] = pinned ? ["taskset", "-c", "1", ...cmd] : cmd;
  const child = spawn(file!, rest, {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server ${index} did not start in 30 s`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => reject(new Error(`server ${index} exited with ${code}`)));
  });
  return { port, child };
}

export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

/** Creates POOL distinct sessions (route A with no cookie) and keeps their cookies. */
export async function cookiePool(base: string, name: string): Promise<string[]> {
  const pool: string[] = [];
  const one = async () => {
    const res = await fetch(`${base}/a`);
    await res.text();
    const c = res.headers.getSetCookie().find((x) => x.startsWith(`${name}=`));
    if (c === undefined) throw new Error(`no ${name} cookie from ${base}/a (status ${res.status})`);
    pool.push(c.split(";")[0]!);
  };
  for (let i = 0; i < POOL; i += 50) await Promise.all(Array.from({ length: Math.min(50, POOL - i) }, one));
  return pool;
}

export interface Sample {
  rps: number;
  p99: number;
  errors: number;
  /** Server CPU time (user + system) per request, in µs. */
  cpuUs: number;
  /** Share of the machine's CPU time the hypervisor gave to others meanwhile (see `stealSince`). */
  steal: number;
}

/** The machine's CPU time in ticks, all of it and the part stolen (the hypervisor running other guests). */
export function cpuTicks(): { total: number; steal: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8")
      .split("\n", 1)[0]!
      .trim()
      .split(/\s+/)
      .slice(1, 9)
      .map(Number);
    return { total: f.reduce((a, b) => a + b, 0), steal: f[7]! };
  } catch {
    return { total: Number.NaN, steal: Number.NaN };
  }
}

/**
 * Share of the machine's CPU time stolen since `before`: on a virtual machine whose host is busy, a
 * measurement runs on cores that are often taken away, and its figures move with that, not with the code.
 */
export function stealSince(before: { total: number; steal: number }): number {
  const now = cpuTicks();
  return (now.steal - before.steal) / Math.max(1, now.total - before.total);
}

/**
 * CPU time a process has used (or its system part: the kernel's work for it), in µs, from /proc (ticks of 10 ms). Throughput is capped by the load
 * generator for the fastest servers; CPU per request is what each server really spends.
 */
export function cpuTimeUs(pid: number | undefined, which: "user+system" | "system" = "user+system"): number {
  if (pid === undefined) return Number.NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (which === "system" ? Number(f[12]) : Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return Number.NaN; // no /proc (macOS): the column shows "—"
  }
}

export async function load(
  base: string,
  path: string,
  pool: string[],
  duration: number,
  serverPid?: number,
): Promise<Sample> {
  let i = 0;
  const ticks = cpuTicks();
  const cpuBefore = cpuTimeUs(serverPid);
  const result = await autocannon({
    url: base,
    connections: CONNECTIONS,
    duration,
    requests: [
      {
        method: "GET",
        path,
        setupRequest: (req: Record<string, unknown>) => ({
          ...req,
          headers: { ...(req.headers as object), cookie: pool[i++ % pool.length] },
        }),
      },
    ],
  });
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    cpuUs: (cpuTimeUs(serverPid) - cpuBefore) / Math.max(1, result.requests.total),
    steal: stealSince(ticks),
  };
}

/**
 * Re-runs this script on core 0 (once), so the load generator never shares a core with the servers,
 * and pins redis-server to core 1 beside them. Returns only in the pinned process (or when unpinned).
 */
export function pinLoadGenerator(): void {
  if (pinned && process.env.KVSESSION_HTTP_BENCH_PINNED !== "1") {
    // Re-run this process on core 0, so the load generator never shares a core with the server.
    const r = spawnSync(
      "taskset",
      ["-c", "0", process.execPath, ...process.execArgv, ...process.argv.slice(1)],
      {
        stdio: "inherit",
        env: { ...process.env, KVSESSION_HTTP_BENCH_PINNED: "1" },
      },
    );
    process.exit(r.status ?? 1);
  }
  if (pinned)
    for (const pid of spawnSync("pgrep", ["-x", "redis-server"], { encoding: "utf8" })
      .stdout.split("\n")
      .filter(Boolean))
      spawnSync("taskset", ["-cp", "1", pid], { stdio: "ignore" });
}

/** 1M small session-shaped records under our namespace, written with pipelined SETs in bounded batches. */
export async function prefillSessions(client: ReturnType<typeof createClient>, n: number): Promise<void> {
  const value = JSON.stringify({ data: { n: 1 }, createdAt: Date.now(), lastSeenAt: Date.now() });
  const batch = 10_000;
  const started = Date.now();
  for (let done = 0; done < n; done += batch) {
    const m = client.multi();
    for (let j = 0; j < Math.min(batch, n - done); j++)
      m.set(`${OURS_NAMESPACE}sess:${randomBytes(32).toString("base64url")}`, value, { PX: 3_600_000 });
    await m.execAsPipeline();
    if (Date.now() - started > 300_000) throw new Error("pre-fill took more than 5 minutes; stopping");
  }
}
