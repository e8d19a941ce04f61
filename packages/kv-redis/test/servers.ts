import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "redis";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  process: ChildProcess;
  /** SIGKILL, and wait until the port is closed. */
  kill(): Promise<void>;
  /** Start again on the same port and directory. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a throwaway `redis-server` of the test's own on 127.0.0.1, in a temporary directory. */
export async function startRedis(extraArgs: string[] = [], port?: number): Promise<RedisServer> {
  const p = port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), `kv-redis-${p}-`));
  const args = [
    "--port",
    String(p),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    ...extraArgs,
  ];
  const server: RedisServer = {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    dir,
    process: undefined as unknown as ChildProcess,
    async start() {
      server.process = spawn("redis-server", args, { stdio: "ignore" });
      await waitPing(p, 10_000);
    },
    async kill() {
      const proc = server.process;
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGKILL");
      await exited;
    },
    async stop() {
      await server.kill().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

async function waitPing(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "ping"]);
      if (stdout.trim() === "PONG") return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not start`);
    await sleep(50);
  }
}

/** Three masters, no replicas, all slots assigned; resolves once cluster_state is ok everywhere. */
export async function startCluster(): Promise<{ nodes: RedisServer[]; stop(): Promise<void> }> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startRedis([
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-node-timeout",
          "5000",
        ]),
      );
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    const until = Date.now() + 20_000;
    for (const n of nodes) {
      for (;;) {
        const { stdout } = await run("redis-cli", ["-p", String(n.port), "cluster", "info"]);
        if (stdout.includes("cluster_state:ok")) break;
        if (Date.now() > until) throw new Error("cluster did not reach cluster_state:ok");
        await sleep(100);
      }
    }
    return { nodes, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** For requireService: PING the server at url. */
export async function ping(url: string): Promise<void> {
  const c = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 2000 } });
  c.on("error", () => {});
  try {
    await c.connect();
    await c.ping();
  } finally {
    if (c.isOpen) c.destroy();
  }
}

/** A Sentinel of the test's own watching `master` under the name "kvmaster". */
export async function startSentinel(master: RedisServer): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), `kv-sentinel-${port}-`));
  const conf = join(dir, "sentinel.conf");
  await writeFile(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      `sentinel monitor kvmaster 127.0.0.1 ${master.port} 1`,
      "sentinel down-after-milliseconds kvmaster 5000",
      "",
    ].join("\n"),
  );
  const proc = spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGKILL");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitPing(port, 10_000);
    return { port, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
