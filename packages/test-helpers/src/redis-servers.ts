import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "redis";
import { freePort } from "./closed-port.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

export interface ClusterOptions {
  /** Replicas per master (default 0). */
  replicas?: number;
  /** cluster-node-timeout in ms (default 5000): how long a silent master goes before it is failed over. */
  nodeTimeoutMs?: number;
  /** Extra redis-server arguments for every node (persistence, say). */
  args?: string[];
}

export interface TestCluster {
  nodes: RedisServer[];
  stop(): Promise<void>;
}

/** Three masters (and `replicas` replicas each), all slots assigned; resolves once every node is in sync. */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const replicas = options.replicas ?? 0;
  const nodes: RedisServer[] = [];
  const stop = async () => {
    for (const n of nodes) if (n.process.signalCode === "SIGSTOP") n.process.kill("SIGCONT");
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      nodes.push(
        await startRedis([
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-node-timeout",
          String(options.nodeTimeoutMs ?? 5000),
          ...(options.args ?? []),
        ]),
      );
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    const until = Date.now() + 30_000;
    for (const n of nodes) {
      for (;;) {
        const { stdout } = await run("redis-cli", ["-p", String(n.port), "cluster", "info"]);
        const view = await clusterNodes(n.port);
        // Every node sees the whole topology, and every replica has finished its first sync.
        const synced =
          view.length === nodes.length &&
          view.filter((x) => x.master).length === 3 &&
          (await replicaInSync(n.port));
        if (stdout.includes("cluster_state:ok") && synced) break;
        if (Date.now() > until)
          throw new Error("cluster did not reach cluster_state:ok with replicas in sync");
        await sleep(100);
      }
    }
    return { nodes, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** True for a master, and for a replica whose link to its master is up. */
export async function replicaInSync(port: number): Promise<boolean> {
  const { stdout } = await run("redis-cli", ["-p", String(port), "info", "replication"]);
  return !stdout.includes("role:slave") || stdout.includes("master_link_status:up");
}

/** One line of CLUSTER NODES, as one node sees it. */
export interface ClusterNodeView {
  id: string;
  port: number;
  master: boolean;
  failed: boolean;
  /** The master's id, for a replica. */
  of: string | undefined;
  /** Slot ranges served, inclusive. */
  slots: Array<[number, number]>;
}

/** The cluster's topology as the node on `port` sees it. */
export async function clusterNodes(port: number): Promise<ClusterNodeView[]> {
  const { stdout } = await run("redis-cli", ["-p", String(port), "cluster", "nodes"]);
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [id, addr, flags, of, , , , , ...slots] = line.split(" ");
      return {
        id: id as string,
        port: Number((addr as string).split("@")[0]?.split(":")[1]),
        master: (flags as string).includes("master"),
        failed: /(^|,)fail(,|$)/.test(flags as string),
        of: of === "-" ? undefined : of,
        slots: slots
          .filter((s) => !s.startsWith("["))
          .map((s) => {
            const [a, b] = s.split("-");
            return [Number(a), Number(b ?? a)] as [number, number];
          }),
      };
    });
}

/** The port of the master serving `slot`, as the node on `askPort` sees it (undefined while none does). */
export async function masterOfSlot(askPort: number, slot: number): Promise<number | undefined> {
  const view = await clusterNodes(askPort);
  const owner = view.find((n) => n.master && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
  return owner?.port;
}

/** A Cluster's shard as a failover test sees it before the fault. */
export interface Shard {
  /** The master serving the slot, and its port. */
  master: RedisServer;
  port: number;
  /** The port of its replica, which a failover promotes. */
  heir: number;
  /** Every slot the master serves. */
  slots: Set<number>;
}

/** The shard that serves `slot`, asked of any node still running. */
export async function shardOfSlot(cluster: TestCluster, slot: number): Promise<Shard> {
  const anyLive = cluster.nodes.find((n) => n.process.exitCode === null && n.process.signalCode === null);
  if (anyLive === undefined) throw new Error("no node of the Cluster is running");
  const port = await masterOfSlot(anyLive.port, slot);
  const master = cluster.nodes.find((n) => n.port === port);
  if (port === undefined || master === undefined) throw new Error(`no master serves slot ${slot}`);
  const view = await clusterNodes(anyLive.port);
  const id = view.find((n) => n.port === port)?.id;
  const heir = view.find((n) => n.of === id)?.port;
  if (heir === undefined) throw new Error(`the master on port ${port} has no replica`);
  const slots = new Set<number>();
  for (const n of view)
    if (n.port === port) for (const [a, b] of n.slots) for (let s = a; s <= b; s++) slots.add(s);
  return { master, port, heir, slots };
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

interface SentinelProcess {
  port: number;
  process: ChildProcess;
  dir: string;
}

/** One Sentinel process watching the master on `masterPort` as "kvmaster"; resolves once it answers. */
async function spawnSentinel(
  masterPort: number,
  o: { quorum: number; downAfterMs: number; failoverTimeoutMs?: number | undefined },
): Promise<SentinelProcess> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), `kv-sentinel-${port}-`));
  const conf = join(dir, "sentinel.conf");
  await writeFile(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      `sentinel monitor kvmaster 127.0.0.1 ${masterPort} ${o.quorum}`,
      `sentinel down-after-milliseconds kvmaster ${o.downAfterMs}`,
      ...(o.failoverTimeoutMs === undefined
        ? []
        : [`sentinel failover-timeout kvmaster ${o.failoverTimeoutMs}`]),
      "",
    ].join("\n"),
  );
  const sentinel = { port, process: spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" }), dir };
  try {
    await waitPing(port, 10_000);
    return sentinel;
  } catch (e) {
    await stopSentinel(sentinel);
    throw e;
  }
}

async function stopSentinel(s: SentinelProcess): Promise<void> {
  if (s.process.exitCode === null && s.process.signalCode === null) {
    const exited = new Promise((r) => s.process.once("exit", r));
    s.process.kill("SIGKILL");
    await exited;
  }
  await rm(s.dir, { recursive: true, force: true });
}

/** A Sentinel of the test's own watching `master` under the name "kvmaster". */
export async function startSentinel(master: RedisServer): Promise<{ port: number; stop(): Promise<void> }> {
  const s = await spawnSentinel(master.port, { quorum: 1, downAfterMs: 5000 });
  return { port: s.port, stop: () => stopSentinel(s) };
}

export interface SentinelGroupOptions {
  /** Sentinels watching the master (default 3). */
  sentinels?: number;
  /** How many Sentinels must agree that the master is down (default 2). */
  quorum?: number;
  /** down-after-milliseconds: how long a silent master goes before it counts as down (default 1000). */
  downAfterMs?: number;
  /** failover-timeout (default 5000). */
  failoverTimeoutMs?: number;
  /** Extra redis-server arguments for the master and its replica (persistence, say). */
  args?: string[];
}

export interface SentinelGroup {
  /** The first master, then its replica: which one is master changes with a failover. */
  nodes: [RedisServer, RedisServer];
  sentinels: Array<{ port: number; process: ChildProcess }>;
  name: string;
  /** The master's port as the first Sentinel that answers names it. */
  masterPort(): Promise<number | undefined>;
  stop(): Promise<void>;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args]);
  return stdout;
}

/**
 * A master with one replica and Sentinels of the test's own watching them under the name
 * "kvmaster"; resolves once the replica is in sync and every Sentinel knows the replica and the
 * other Sentinels (before that, a failover could not reach its quorum or find a replica).
 */
export async function startSentinelGroup(options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  const name = "kvmaster";
  const count = options.sentinels ?? 3;
  const nodes: RedisServer[] = [];
  const sentinels: SentinelProcess[] = [];
  const stop = async () => {
    for (const p of [...nodes.map((n) => n.process), ...sentinels.map((s) => s.process)])
      if (p?.signalCode === "SIGSTOP") p.kill("SIGCONT");
    for (const s of sentinels) await stopSentinel(s);
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    const master = await startRedis(options.args ?? []);
    nodes.push(master);
    nodes.push(await startRedis([...(options.args ?? []), "--replicaof", "127.0.0.1", String(master.port)]));
    for (let i = 0; i < count; i++)
      sentinels.push(
        await spawnSentinel(master.port, {
          quorum: options.quorum ?? 2,
          downAfterMs: options.downAfterMs ?? 1000,
          failoverTimeoutMs: options.failoverTimeoutMs ?? 5000,
        }),
      );
    const until = Date.now() + 30_000;
    for (;;) {
      const views = await Promise.all(
        sentinels.map((s) => cli(s.port, "sentinel", "master", name).catch(() => "")),
      );
      const field = (v: string, f: string) => {
        const lines = v.split("\n");
        return lines[lines.indexOf(f) + 1];
      };
      const known = views.every(
        (v) => field(v, "num-slaves") === "1" && field(v, "num-other-sentinels") === String(count - 1),
      );
      if (known && (await replicaInSync(nodes[1]!.port))) break;
      if (Date.now() > until)
        throw new Error("Sentinels did not discover the replica and each other in 30 s");
      await sleep(100);
    }
    return {
      nodes: nodes as [RedisServer, RedisServer],
      sentinels,
      name,
      async masterPort() {
        for (const s of sentinels) {
          const out = await cli(s.port, "sentinel", "get-master-addr-by-name", name).catch(() => "");
          const port = Number(out.split("\n")[1]);
          if (port > 0) return port;
        }
        return undefined;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
