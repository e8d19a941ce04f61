import { KvConnectionError } from "@kvsession/kv";
import {
  createClient,
  createCluster,
  createSentinel,
  RESP_TYPES,
  type RedisClientOptions,
  type RedisClusterOptions,
  type RedisSentinelOptions,
} from "redis";
import { SLOTS, slotOf } from "./slots.js";
import { watchTopology } from "./topology.js";

// biome-ignore lint/suspicious/noExplicitAny: accept clients built with any modules, scripts or RESP version
type Any = any;

/**
 * A node-redis client, cluster or sentinel, connected or not, of either supported major (redis@5,
 * redis@6): typed by what the driver uses of it, not by the classes of one copy of `redis`, so an
 * app's own client type-checks whichever version the app installed.
 */
export type RedisLike = RedisClientLike | RedisClusterLike | RedisSentinelLike;

/** What every kind has: the driver reads replies through a copy that maps bulk strings to Buffers. */
interface TypeMappable {
  readonly isOpen: boolean;
  // `never`: any node-redis signature (generic over its own TypeMapping) is assignable.
  withTypeMapping(typeMapping: never): object;
}
/** `createClient()`. */
export interface RedisClientLike extends TypeMappable {
  readonly isReady: boolean;
  sendCommand(args: never, options?: never): Promise<unknown>;
}
/** `createCluster()`. */
export interface RedisClusterLike extends TypeMappable {
  readonly masters: readonly object[];
  nodeClient(node: never): Promise<object>;
}
/** `createSentinel()`. */
export interface RedisSentinelLike extends TypeMappable {
  readonly isReady: boolean;
  getSentinelNode(): object | undefined;
}

type Arg = string | Buffer;
/** The slice of node-redis the driver uses, on a proxy whose bulk strings come back as Buffers. */
export interface Commands {
  get(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer, options?: object): Promise<unknown>;
  mGet(keys: string[]): Promise<Array<Buffer | null>>;
  exists(key: string): Promise<number>;
  unlink(keys: string[]): Promise<number>;
  evalSha(sha: string, o: { keys: string[]; arguments: Arg[] }): Promise<unknown>;
  eval(source: string, o: { keys: string[]; arguments: Arg[] }): Promise<unknown>;
  /** A MULTI/EXEC transaction; in a Cluster node-redis sends it to the node of its first key. */
  multi(): Transaction;
}

/** The commands the driver queues in a transaction. */
export interface Transaction {
  set(key: string, value: Buffer, options?: object): Transaction;
  /** Keys and values alternating. */
  mSet(pairs: Arg[]): Transaction;
  del(keys: string[]): Transaction;
  exec(): Promise<unknown[]>;
}

export interface ScanNode {
  /**
   * Stable identity of what the node holds, in listing order: in a Cluster the first slot of its
   * shard, so a cursor keeps its place when the shard's master changes or the masters are listed
   * in another order ("" on a single server).
   */
  id: string;
  /** The node itself (host:port): another address under the same id means a failover happened. */
  address: string;
  scan(cursor: string, match: string, count: number): Promise<{ cursor: string; keys: string[] }>;
}

export interface Connection {
  readonly cmd: Commands;
  readonly cluster: boolean;
  readonly where: string;
  /** Resolves at once when connected; otherwise waits up to `waitMs` for the connection, then rejects typed. */
  usable(): Promise<void> | undefined;
  scanNodes(): Promise<ScanNode[]>;
  /** A command failed for want of a connection or an answer: in a Cluster, re-read the slot map soon. */
  suspect(): void;
  /** The connection that serves `key`'s master: in a Cluster its node's own, elsewhere the only one. */
  nodeFor(key: string): Promise<Commands>;
  /** `WAIT replicas timeoutMs` on that connection: how many replicas acknowledged its writes so far. */
  waitReplicas(on: Commands, replicas: number, timeoutMs: number): Promise<number>;
  /** How many replicas are connected to the master behind that connection now (ROLE; 0 if it is no master). */
  connectedReplicas(on: Commands): Promise<number>;
  close(): Promise<void>;
}

export interface ConnectionOptions {
  url?: string | undefined;
  client?: RedisLike | undefined;
  cluster?: RedisClusterOptions<Any, Any, Any, Any, Any> | undefined;
  sentinel?: RedisSentinelOptions<Any, Any, Any, Any, Any> | undefined;
  clientOptions?: RedisClientOptions<Any, Any, Any, Any, Any> | undefined;
  connectWaitMs: number;
  /** The same for the very first connection, which may include DNS, TLS and a cluster's slot discovery. */
  firstConnectWaitMs: number;
  /** The longest-waiting command still unanswered, if any: a Cluster looks for a failover when it waits long. */
  oldestPending?: () => object | undefined;
}

// Reconnect quickly after a restart, and never queue commands while offline: a caller gets a typed
// error now instead of a promise that waits for a server that may never come back.
const socketDefaults = {
  connectTimeout: 2000,
  reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
};

const keyString = (k: unknown): string => (typeof k === "string" ? k : (k as Buffer).toString("utf8"));

export function openConnection(o: ConnectionOptions): Connection {
  let raw: RedisLike;
  const owned = o.client === undefined;
  if (o.client) raw = o.client;
  else if (o.cluster) {
    raw = createCluster({
      ...o.cluster,
      defaults: {
        disableOfflineQueue: true,
        ...o.cluster.defaults,
        socket: { ...socketDefaults, ...o.cluster.defaults?.socket },
      },
    });
  } else if (o.sentinel) {
    raw = createSentinel({
      ...o.sentinel,
      nodeClientOptions: {
        disableOfflineQueue: true,
        ...o.sentinel.nodeClientOptions,
        socket: { ...socketDefaults, ...o.sentinel.nodeClientOptions?.socket },
      },
    } as RedisSentinelOptions);
  } else {
    const opts = o.clientOptions ?? {};
    raw = createClient({
      ...opts,
      url: o.url ?? opts.url ?? "redis://127.0.0.1:6379",
      disableOfflineQueue: opts.disableOfflineQueue ?? true,
      socket: { ...socketDefaults, ...opts.socket },
    } as RedisClientOptions);
  }
  const cluster = "masters" in raw;
  const sentinel = "getSentinelNode" in raw;
  const where = describe(o);
  const r = raw as Any;
  let lastError: unknown;
  // An owned cluster is open from the start of connect(), usable only after its first slot discovery.
  let connected = false;
  if (owned) {
    // The client emits every socket failure as 'error'; without a listener Node would exit the process.
    r.on("error", (e: unknown) => {
      lastError = e;
    });
    Promise.resolve(r.connect()).then(
      () => {
        connected = true;
      },
      (e: unknown) => {
        lastError = e;
      },
    );
  }
  const bytes = { [RESP_TYPES.BLOB_STRING]: Buffer };
  const cmd: Commands = r.withTypeMapping(bytes);
  const topology = cluster ? watchTopology(r, o.oldestPending ?? (() => undefined)) : undefined;
  /** Node clients with the same reply typing as `cmd`, made once per client. */
  const typed = new WeakMap<object, Commands>();
  let shardStarts: { of: unknown; first: Map<unknown, number> } | undefined;
  /** Each master's first slot, computed once per slot map (node-redis replaces `masters` on every discovery). */
  function firstSlots(): Map<unknown, number> {
    if (shardStarts !== undefined && shardStarts.of === r.masters) return shardStarts.first;
    const first = new Map<unknown, number>();
    const slots = r.slots as Array<{ master: unknown } | undefined>;
    for (let s = 0; s < SLOTS; s++) {
      const m = slots[s]?.master;
      if (m !== undefined && !first.has(m)) first.set(m, s);
    }
    shardStarts = { of: r.masters, first };
    return first;
  }
  const isUpNow = cluster ? () => r.isOpen && (connected || !owned) : () => r.isReady as boolean;
  let everUp = false;
  const isUp = () => {
    const up = isUpNow();
    if (up) everUp = true;
    return up;
  };

  // One poll shared by every operation waiting on the same reconnection. Polling, because a
  // sentinel emits no 'ready' and a cluster's readiness is per node.
  let nextReady: Promise<void> | undefined;
  let closed = false;
  function readySignal(): Promise<void> {
    nextReady ??= new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (!isUp() && !closed) return;
        clearInterval(poll);
        nextReady = undefined;
        resolve();
      }, 20);
      poll.unref();
    });
    return nextReady;
  }

  function waitForReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          const reason = lastError instanceof Error ? lastError.message : "not connected";
          const waited = everUp ? o.connectWaitMs : o.firstConnectWaitMs;
          reject(
            new KvConnectionError(
              `Redis at ${where} is unreachable (${reason}) after waiting ${waited} ms; the store reconnects by itself, retry once the server is back${owned ? "" : " (a client you pass in must be connected by you)"}`,
              { cause: lastError },
            ),
          );
        },
        everUp ? o.connectWaitMs : o.firstConnectWaitMs,
      );
      readySignal().then(() => {
        // Not up after all (a failed first cluster discovery): the timer rejects.
        if (!isUp()) return;
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** A raw command on one connection. A Sentinel's commands take a read-only flag first; clients' do not. */
  const send = (on: Commands, args: string[]): Promise<unknown> =>
    sentinel ? (on as Any).sendCommand(false, args) : (on as Any).sendCommand(args);

  return {
    cmd,
    cluster,
    where,
    usable: () => (isUp() ? undefined : waitForReady()),
    async scanNodes() {
      if (!cluster) {
        return [{ id: "", address: "", scan: (c, match, count) => scanOn(cmd, c, match, count) }];
      }
      // Masters that serve slots, in slot order; one that lost its slots holds nothing to list.
      const first = firstSlots();
      const masters = (r.masters as Array<{ address: string }>)
        .filter((m) => first.has(m))
        .sort((a, b) => (first.get(a) as number) - (first.get(b) as number));
      return masters.map((m) => ({
        id: String(first.get(m)).padStart(5, "0"),
        address: m.address,
        scan: async (c: string, match: string, count: number) =>
          scanOn(await r.nodeClient(m), c, match, count),
      }));
    },
    suspect() {
      topology?.suspect();
    },
    async nodeFor(key: string) {
      if (!cluster) return cmd;
      const shard = (r.slots as Array<{ master: unknown } | undefined>)[slotOf(key)];
      if (shard === undefined)
        throw new KvConnectionError(`Redis at ${where} has no master for this key's slot yet; retry shortly`);
      const client = await r.nodeClient(shard.master);
      let c = typed.get(client);
      if (c === undefined) {
        c = client.withTypeMapping(bytes) as Commands;
        typed.set(client, c);
      }
      return c;
    },
    async waitReplicas(on: Commands, replicas: number, timeoutMs: number) {
      return Number(await send(on, ["WAIT", String(replicas), String(timeoutMs)]));
    },
    async connectedReplicas(on: Commands) {
      const role = (await send(on, ["ROLE"])) as unknown[];
      return keyString(role[0]) === "master" && Array.isArray(role[2]) ? role[2].length : 0;
    },
    async close() {
      closed = true;
      topology?.stop();
      if (!owned) return;
      try {
        // close() lets commands in flight finish; with no connection there is nothing to finish,
        // and destroy() also stops the reconnect loop.
        if (isUp()) await r.close();
        else await r.destroy();
      } catch {
        // already closed
      }
    },
  };
}

async function scanOn(client: Any, cursor: string, match: string, count: number) {
  const res = await client.scan(cursor, { MATCH: match, COUNT: count });
  return { cursor: String(res.cursor), keys: (res.keys as unknown[]).map(keyString) };
}

function describe(o: ConnectionOptions): string {
  if (o.url) return redact(o.url);
  if (o.sentinel) return `sentinel master "${o.sentinel.name}"`;
  if (o.cluster) return `cluster ${o.cluster.rootNodes.map((n) => (n.url ? redact(n.url) : "?")).join(",")}`;
  const url = o.clientOptions?.url;
  if (url) return redact(url);
  return o.client ? "the given client" : "redis://127.0.0.1:6379";
}

/** Never put a password into an error message. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.password = u.password ? "***" : "";
    return u.toString();
  } catch {
    return "(unparsable url)";
  }
}
