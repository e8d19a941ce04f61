import { randomBytes } from "node:crypto";
import {
  KvArgumentError,
  KvConnectionError,
  type KvStore,
  KvTimeoutError,
  type KvVersion,
} from "@kvsession/kv";
import {
  asBuffer,
  type BatchKind,
  createCoalescer,
  createStore,
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_MAX_VALUE_BYTES,
  type DriverEntry,
  type DriverWrite,
  type KvDriver,
} from "@kvsession/kv/driver";
import type { RedisClientOptions, RedisClusterOptions, RedisSentinelOptions } from "redis";
import { type Commands, openConnection, type RedisLike } from "./connection.js";
import { refusal, toKvError } from "./errors.js";
import { createKeySpace } from "./keys.js";
import { scanPage } from "./list.js";
import { replicatedWrites, type Send } from "./replicas.js";
import {
  COMPARE_AND_SET,
  COMPARE_AND_SET_MANY,
  DELETE,
  GET_VERSIONED,
  type Script,
  SET,
  SET_IF_ABSENT,
} from "./scripts.js";
import { slotOf } from "./slots.js";
import { createWatchdog } from "./watchdog.js";

export interface RedisStoreOptions {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://…`. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Options of node-redis `createClient` (the url above wins when both are given). */
  clientOptions?: RedisClientOptions;
  /** Options of node-redis `createCluster`: the store connects to a Redis Cluster instead. */
  cluster?: RedisClusterOptions;
  /** Options of node-redis `createSentinel`: the store follows the master that Sentinel names. */
  sentinel?: RedisSentinelOptions;
  /**
   * An existing node-redis client, cluster or sentinel. The store uses it but
   * does not own it: connect it yourself, listen to its 'error' event, and
   * close it after the store. Create it with `disableOfflineQueue: true` so
   * commands fail fast while the server is away.
   */
  client?: RedisLike;
  /**
   * Prefix of every Redis key this store writes; `clear()` deletes only keys
   * under it. Default `"kv:"`. A namespace with one hash tag (`"{app}:"`)
   * pins every key to one Cluster slot.
   */
  namespace?: string;
  /**
   * How long an operation waits for a connection before failing with
   * KvConnectionError: on a single server, for a (re)connection; through Sentinel
   * and in a Cluster, only for the first one (through Sentinel, the client holds
   * an operation whose master is down while it asks the Sentinels for the master,
   * bounded by commandTimeoutMs; in a Cluster, a command for a master whose
   * connection is down fails at once, and the store looks for the replica
   * promoted in its place). Default 1000 ms, and 5000 ms before the store's first
   * connection (which may include DNS, TLS and a cluster's slot discovery).
   * Nothing is ever queued offline.
   */
  connectWaitMs?: number;
  /**
   * How long an operation waits for an answer before failing with KvTimeoutError; 0 disables
   * (and with it a Cluster's detection of a stalled master). Default 5000 ms. A command the server
   * refused without running it (`CLUSTERDOWN` while a Cluster fails over, `LOADING` while a
   * restarted server reads its data, `TRYAGAIN`, `MOVED`) counts as not answered yet: it is sent
   * again every 50 ms within this time (within connectWaitMs when this is 0).
   */
  commandTimeoutMs?: number;
  /**
   * Acknowledge a write only once `replicas` replicas have it: each write command is followed by
   * `WAIT replicas timeoutMs` on the same connection, and a write fewer replicas confirmed in time
   * fails with KvTimeoutError (it is applied on the master and may or may not survive a failover).
   * Covers `set`, `setIfAbsent`, `compareAndSet` and `delete`; not `clear()`. Off by default: Redis
   * replicates asynchronously, so without it a write acknowledged just before its master dies can
   * be missing from the replica promoted in its place. With one replica per master, writes on a
   * failed-over shard fail until a replica is back. `timeoutMs` defaults to 1000.
   */
  wait?: { replicas: number; timeoutMs?: number };
  /** Largest value accepted. Default 512 MiB, Redis's own `proto-max-bulk-len`. */
  maxValueBytes?: number;
  /**
   * Keep compare-and-set versions (default true). Every plain write must then
   * also drop the key's version record, so `set` is one `EVALSHA` instead of
   * one `SET` (more server time per write, see docs/benchmarks.md).
   * `false` makes `set` a bare `SET` and declares `compareAndSet: false`.
   */
  versions?: boolean;
}

// Unique across processes (random) and within one (counter): a version is never handed out twice.
const VERSION_HEAD = randomBytes(9).toString("base64url");
let versionCounter = 0;
const newVersion = () => `${VERSION_HEAD}.${(++versionCounter).toString(36)}`;

/** Redis wants a relative PX in ms; relative also makes the deadline immune to clock skew between hosts. */
function pxMs(expiresAt: number): number {
  return Math.max(1, Math.ceil(expiresAt - Date.now()));
}
/** PX as a script argument ("" = no expiry). */
function px(expiresAt: number | undefined): string {
  return expiresAt === undefined ? "" : String(pxMs(expiresAt));
}

/**
 * Operations one batched command carries at most, twice the coalescer's default: under many callers
 * the client's fixed work per command is most of a small write's cost, so fewer, fuller commands win.
 */
const MAX_BATCH = 32;
/**
 * Bytes of values one batched write carries at most. Redis starts on a command only once all of it
 * has arrived, so a big one leaves the server idle while the client writes it.
 */
const MAX_BATCH_BYTES = 16 * 10 * 1024;
const valueBytes = (w: { value: Buffer }) => w.value.length;

/** Pause before sending again a command the server refused without running it (a Cluster failing over). */
const RESEND_AFTER_MS = 50;

/**
 * What a batch hands back per operation in a Cluster: the operation's own promise, which the
 * coalescer's `resolve` adopts, so each operation settles with its own slot's command.
 */
type Each<R> = R | Promise<R>;
const ignore = () => undefined;
const isOutage = (e: unknown) => e instanceof KvConnectionError || e instanceof KvTimeoutError;
const isNoScript = (e: unknown) => e instanceof Error && e.message.startsWith("NOSCRIPT");

/**
 * The Redis/Valkey driver behind `createRedisStore`, for composing with
 * other `@kvsession/kv` wrappers.
 *
 * @example
 * import { createStore } from "@kvsession/kv/driver";
 * const store = createStore(redisDriver({ url: process.env.REDIS_URL }));
 */
export function redisDriver(options: RedisStoreOptions = {}): KvDriver {
  const ks = createKeySpace(options.namespace ?? "kv:");
  const nsLen = ks.namespace.length;
  const replicas = options.wait?.replicas ?? 0;
  const waitMs = options.wait?.timeoutMs ?? 1000;
  if (!Number.isInteger(replicas) || replicas < 0 || !Number.isInteger(waitMs) || waitMs < 1)
    throw new KvArgumentError(
      `wait needs a whole number of replicas (0 or more) and a timeoutMs of at least 1; got ${JSON.stringify(options.wait)}`,
    );
  const connectWaitMs = options.connectWaitMs ?? 1000;
  const conn = openConnection({
    url: options.url,
    client: options.client,
    cluster: options.cluster,
    sentinel: options.sentinel,
    clientOptions: options.clientOptions,
    connectWaitMs,
    firstConnectWaitMs: options.connectWaitMs ?? 5000,
    oldestPending: () => watchdog.oldest(),
  });
  const cmd: Commands = conn.cmd;
  const commandTimeoutMs = options.commandTimeoutMs ?? 5000;
  // A refused command is one not answered yet: sent again until the command's own deadline (the
  // watchdog's), or for connectWaitMs when commands have none.
  const resendForMs = commandTimeoutMs > 0 ? commandTimeoutMs : connectWaitMs;
  const watchdog = createWatchdog(commandTimeoutMs, conn.where, (e, firstFailure) => {
    const code = refusal(e);
    if (code === undefined) return undefined;
    if (code === "MOVED" || code === "ASK" || code === "CLUSTERDOWN") conn.suspect();
    return Date.now() - firstFailure < resendForMs ? RESEND_AFTER_MS : undefined;
  });
  const batches = createCoalescer(MAX_BATCH, MAX_BATCH_BYTES);
  const fail = (e: unknown): never => {
    const k = toKvError(e, conn.where);
    // A master may be gone: look for its replacement now rather than at the next check.
    if (conn.cluster && isOutage(k)) conn.suspect();
    throw k;
  };
  const same = <T>(v: T) => v;

  /**
   * Every command goes through here: wait (bounded) for a connection if there
   * is none, bound the wait for the answer, map the reply and type the errors.
   * Connected, it adds one promise to node-redis's own.
   */
  function run<T, R = T>(op: () => Promise<T>, map: (v: T) => R = same as (v: T) => R): Promise<R> {
    // Whatever is queued was issued before this: it goes out first.
    batches.flush();
    const wait = conn.usable();
    if (wait) return wait.then(() => watchdog.track(op(), map, fail, op), fail).catch(fail);
    let p: Promise<T>;
    try {
      p = op();
    } catch (e) {
      p = Promise.reject(e);
    }
    return watchdog.track(p, map, fail, op);
  }

  /**
   * A script on connection `c`: EVALSHA, falling back to EVAL after NOSCRIPT (a server restart,
   * SCRIPT FLUSH, a promoted replica); with `source` given, exactly one of the two.
   */
  function evalOn(
    c: Commands,
    s: Script,
    keys: string[],
    args: Array<string | Buffer>,
    source?: boolean,
  ): Promise<unknown> {
    if (source === true) return c.eval(s.source, { keys, arguments: args });
    const sent = c.evalSha(s.sha, { keys, arguments: args });
    if (source === false) return sent;
    return sent.catch((e: unknown) => {
      if (isNoScript(e)) return c.eval(s.source, { keys, arguments: args });
      throw e;
    });
  }
  const evalScript = (s: Script, keys: string[], args: Array<string | Buffer>) => evalOn(cmd, s, keys, args);

  /** A write of the store's `key`: sent as it is, or followed by `WAIT` (`replicas.ts`) when asked to. */
  const write: <T>(key: string, send: Send<T>) => Promise<T> =
    replicas === 0 ? (_key, send) => send(cmd) : replicatedWrites(conn, ks.data, replicas, waitMs);

  const versions = options.versions ?? true;
  const done = () => undefined;
  const isOne = (n: unknown) => n === 1;
  const toEntry = (v: Buffer | null): DriverEntry | undefined => (v === null ? undefined : { value: v });

  /** Indices of `redisKeys` grouped by Cluster slot: a command may only touch keys of one slot. */
  function bySlot(redisKeys: string[]): number[][] {
    const groups = new Map<number, number[]>();
    redisKeys.forEach((k, i) => {
      const slot = slotOf(k);
      const group = groups.get(slot);
      if (group) group.push(i);
      else groups.set(slot, [i]);
    });
    return [...groups.values()];
  }

  /** `send` once per slot group (once in all on a single server), results back in item order; one operation. */
  async function perSlot<A, R>(items: A[], keyOf: (a: A) => string, send: (g: A[]) => Promise<R[]>) {
    if (!conn.cluster) return send(items);
    const out = new Array<R>(items.length);
    await Promise.all(
      bySlot(items.map(keyOf)).map(async (idx) => {
        const res = await send(idx.map((i) => items[i] as A));
        idx.forEach((i, j) => {
          out[i] = res[j] as R;
        });
      }),
    );
    return out;
  }

  /**
   * A batch of operations, `send` once per slot group, each operation settling with its own group:
   * in a Cluster a group whose master is down fails only its own operations, and one whose master
   * stalled holds only its own (the batch is handed back once the first group has answered, each
   * operation as a promise of its own); any other failure retries that group's operations one by
   * one, as the coalescer does for a whole batch. On a single server the batch is one command.
   */
  function perSlotEach<A, R>(
    items: A[],
    keyOf: (a: A) => string,
    send: (g: A[]) => Promise<Array<Each<R>>>,
    one: (a: A) => Promise<R>,
  ): Promise<Array<Each<R>>> {
    if (!conn.cluster) return send(items);
    const out = new Array<Promise<R>>(items.length);
    const groups = bySlot(items.map(keyOf)).map((idx) => {
      const sent = send(idx.map((i) => items[i] as A));
      idx.forEach((i, j) => {
        out[i] = sent.then(
          (res) => res[j] as Each<R>,
          (err: unknown) => (isOutage(err) ? Promise.reject(err) : one(items[i] as A)),
        );
      });
      return sent;
    });
    return Promise.race(groups.map((g) => g.then(ignore, ignore))).then(() => out);
  }
  /** The public operation of a batched kind: its promise settles as its own operation's (typing only). */
  const own = <R>(p: Promise<Each<R>>) => p as Promise<R>;

  interface Write {
    key: string;
    value: Buffer;
    expiresAt: number | undefined;
  }
  const dataKeyOf = (w: { key: string }) => ks.data(w.key);
  const pairOf = (key: string) => [ks.data(key), ks.version(key)];
  /** Write batches answer nothing per item. */
  const noReplies = (g: unknown[]) => new Array<undefined>(g.length);

  /** Relative, computed when the command is sent (never before a wait for a reconnection). */
  const pxOption = (expiresAt: number) => ({ expiration: { type: "PX", value: pxMs(expiresAt) } });

  const versionedSetOne = (w: Write) =>
    run(
      () => write(w.key, (c, source) => evalOn(c, SET, pairOf(w.key), [w.value, px(w.expiresAt)], source)),
      done,
    );
  const plainSetOne = (w: Write) => {
    const k = ks.data(w.key);
    const at = w.expiresAt;
    return run(
      () => write(w.key, (c) => (at === undefined ? c.set(k, w.value) : c.set(k, w.value, pxOption(at)))),
      done,
    );
  };
  /** Concurrent writes of either kind: one transaction per Cluster slot (`setTransaction`). */
  const setMany = (ws: Write[]) =>
    perSlotEach(
      ws,
      dataKeyOf,
      (g) =>
        run(
          () => write((g[0] as Write).key, (c) => setTransaction(g, c)),
          () => noReplies(g),
        ),
      versions ? versionedSetOne : plainSetOne,
    );
  const versionedSet: BatchKind<Write, Each<undefined>> = {
    one: versionedSetOne,
    many: setMany,
    bytes: valueBytes,
  };
  /**
   * Several plain writes as one MULTI/EXEC (per Cluster slot): the writes without expiry as one `MSET`
   * (a write with one, a `SET … PX`, ends the run, so a key written twice keeps the later value), then,
   * with versions, one `DEL` of their version records. The same work in a looping script costs the
   * server more per write (a Lua string per argument and a `redis.call` per command). A transaction the server refuses (out of memory) fails as a whole, and the
   * coalescer then retries its writes one by one, so each gets its own typed error.
   */
  function setTransaction(g: Write[], c: Commands): Promise<unknown> {
    const tx = c.multi();
    let plain: Array<string | Buffer> = [];
    const records: string[] = [];
    for (let i = 0; i < g.length; i++) {
      const w = g[i] as Write;
      if (versions) records.push(ks.version(w.key));
      if (w.expiresAt === undefined) {
        plain.push(ks.data(w.key), w.value);
        continue;
      }
      if (plain.length > 0) {
        tx.mSet(plain);
        plain = [];
      }
      tx.set(ks.data(w.key), w.value, pxOption(w.expiresAt));
    }
    if (plain.length > 0) tx.mSet(plain);
    return (versions ? tx.del(records) : tx).exec();
  }
  const plainSetKind: BatchKind<Write, Each<undefined>> = {
    one: plainSetOne,
    many: setMany,
    bytes: valueBytes,
  };

  /**
   * Without versions a lone write is one `SET`, and concurrent ones the same transaction minus the
   * `DEL`: one transaction costs the server less than the same writes pipelined one by one.
   */
  const setKind = versions ? versionedSet : plainSetKind;
  const set = (key: string, value: Uint8Array, expiresAt: number | undefined): Promise<void> =>
    own(batches.add(setKind, { key, value: asBuffer(value), expiresAt }));

  const getOne = (k: string) => run(() => cmd.get(k), toEntry);
  const getKind: BatchKind<string, Each<DriverEntry | undefined>> = {
    one: getOne,
    many: (redisKeys) =>
      perSlotEach(
        redisKeys,
        same,
        (g) =>
          run(
            () => cmd.mGet(g),
            (vals) => vals.map(toEntry),
          ),
        getOne,
      ),
  };

  type Versioned = { entry: DriverEntry | undefined; version: KvVersion };
  const ABSENT: Versioned = { entry: undefined, version: null };
  type VersionedReply = [Buffer, Buffer | string, number] | null | 0;
  // The deadline is not reported (as with `get`): Redis enforces it itself.
  const toVersioned = (r: VersionedReply): Versioned =>
    r === null || r === 0 ? ABSENT : { entry: { value: r[0] }, version: String(r[1]) };
  /** Keys interleaved as MGET wants them: version record, then value, per key (a loop: `flatMap` makes an array per key). */
  function versionedPairs(keys: string[]): string[] {
    const out = new Array<string>(2 * keys.length);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as string;
      out[2 * i] = ks.version(k);
      out[2 * i + 1] = ks.data(k);
    }
    return out;
  }
  /**
   * A value that has no version record yet (written by a plain `set`) gets one from a script, so
   * the version it is handed is pinned in Redis; `undefined` marks those in `fromMget`.
   */
  function fromMget(reply: Array<Buffer | null>, i: number): Versioned | undefined {
    const version = reply[2 * i];
    const value = reply[2 * i + 1];
    if (value === null || value === undefined) return ABSENT;
    return version === null || version === undefined
      ? undefined
      : { entry: { value }, version: String(version) };
  }
  const lazyVersion = (key: string): Promise<Versioned> =>
    run(
      () => evalScript(GET_VERSIONED, pairOf(key), [newVersion()]),
      (r) => toVersioned(r as VersionedReply),
    );
  /**
   * One `MGET` of the version record and the value: atomic, and the cheapest read Redis has
   * (a script costs the server several times as much). Only a value without a
   * version record takes the script, which writes one.
   */
  const versionedPair = (key: string) =>
    run(
      () => cmd.mGet(versionedPairs([key])),
      (r) => fromMget(r, 0),
    );
  const getVersionedKind: BatchKind<string, Each<Versioned>> = {
    one: (key) => versionedPair(key).then((v) => v ?? lazyVersion(key)),
    many: (keys) =>
      perSlotEach(
        keys,
        ks.data,
        (g) =>
          run(
            () => cmd.mGet(versionedPairs(g)),
            (r) => g.map((_, i) => fromMget(r, i)),
          ),
        versionedPair,
      ).then((got): Array<Each<Versioned>> | Promise<Versioned[]> =>
        conn.cluster
          ? got.map((v, i) =>
              (v as Promise<Versioned | undefined>).then((x) => x ?? lazyVersion(keys[i] as string)),
            )
          : Promise.all(
              (got as Array<Versioned | undefined>).map((v, i) => v ?? lazyVersion(keys[i] as string)),
            ),
      ),
  };

  interface Swap extends Write {
    expected: KvVersion;
    /** The version this write creates when it lands. */
    next: string;
  }
  const casArgs = (w: Swap) => [w.expected ?? "", w.value, px(w.expiresAt), w.next];
  const compareAndSetOne = (w: Swap) =>
    run(
      () => write(w.key, (c, source) => evalOn(c, COMPARE_AND_SET, pairOf(w.key), casArgs(w), source)),
      (r) => (r === 1 ? w.next : false),
    );
  /**
   * One looping script per Cluster slot: each item's two keys and four arguments laid end to end
   * (written out rather than with `flatMap`, which allocates an array per item on a hot path).
   */
  function compareAndSetScript(g: Swap[], c: Commands, source?: boolean): Promise<unknown> {
    const keys = new Array<string>(2 * g.length);
    const args = new Array<string | Buffer>(4 * g.length);
    for (let i = 0; i < g.length; i++) {
      const w = g[i] as Swap;
      keys[2 * i] = ks.data(w.key);
      keys[2 * i + 1] = ks.version(w.key);
      args[4 * i] = w.expected ?? "";
      args[4 * i + 1] = w.value;
      args[4 * i + 2] = px(w.expiresAt);
      args[4 * i + 3] = w.next;
    }
    return evalOn(c, COMPARE_AND_SET_MANY, keys, args, source);
  }
  /** One pair's answer from the batch script: 1 or 0, or the error of that pair alone. */
  const swapped = (r: unknown, w: Swap): Each<string | false> =>
    typeof r === "number" ? r === 1 && w.next : Promise.reject(toKvError(new Error(String(r)), conn.where));
  const compareAndSetKind: BatchKind<Swap, Each<string | false>> = {
    one: compareAndSetOne,
    many: (ws) =>
      perSlotEach<Swap, string | false>(
        ws,
        dataKeyOf,
        (g) =>
          run(
            () => write((g[0] as Swap).key, (c, source) => compareAndSetScript(g, c, source)),
            (r) => (r as unknown[]).map((x, i) => swapped(x, g[i] as Swap)),
          ),
        compareAndSetOne,
      ),
    bytes: valueBytes,
  };

  const del = versions
    ? (key: string): Promise<boolean> =>
        run(
          () => write(key, (c, source) => evalOn(c, DELETE, [ks.data(key), ks.version(key)], [], source)),
          isOne,
        )
    : (key: string): Promise<boolean> => {
        const k = ks.data(key);
        return run(() => write(key, (c) => c.unlink([k])), isOne);
      };

  async function getMany(keys: string[]): Promise<Array<DriverEntry | undefined>> {
    const redisKeys = keys.map(ks.data);
    const values = await mget(redisKeys);
    return values.map((v) => (v === null ? undefined : { value: v }));
  }

  /** MGET in one round trip; in a Cluster one MGET per slot, all sent at once. */
  async function mget(redisKeys: string[]): Promise<Array<Buffer | null>> {
    if (redisKeys.length === 0) return [];
    return perSlot(redisKeys, same, (g) => run(() => cmd.mGet(g)));
  }

  async function unlinkAll(redisKeys: string[]): Promise<void> {
    if (redisKeys.length === 0) return;
    if (!conn.cluster) {
      await run(() => cmd.unlink(redisKeys));
      return;
    }
    await Promise.all(redisKeys.map((k) => run(() => cmd.unlink([k]))));
  }

  return {
    name: "redis",
    capabilities: {
      ttl: "native",
      ttlGranularityMs: 1,
      setIfAbsent: true,
      compareAndSet: versions,
      orderedListing: false,
      maxKeyBytes: DEFAULT_MAX_KEY_BYTES,
      maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
    },

    get(key) {
      return own(batches.add(getKind, ks.data(key)));
    },

    has(key) {
      const k = ks.data(key);
      return run(() => cmd.exists(k), isOne);
    },

    set,
    delete: del,
    getMany,

    async setMany(writes: DriverWrite[]) {
      // Issued in one tick, node-redis pipelines them into one round trip per connection.
      await Promise.all(writes.map((w) => set(w.key, w.value, w.expiresAt)));
    },

    deleteMany(keys) {
      return Promise.all(keys.map(del));
    },

    async setIfAbsent(key, value, expiresAt) {
      if (!versions) {
        const k = ks.data(key);
        const v = asBuffer(value);
        const opts = () => (expiresAt === undefined ? { NX: true } : { NX: true, PX: pxMs(expiresAt) });
        return (await run(() => write(key, (c) => c.set(k, v, opts())))) !== null;
      }
      const v = asBuffer(value);
      const r = await run(() =>
        write(key, (c, source) =>
          evalOn(c, SET_IF_ABSENT, [ks.data(key), ks.version(key)], [v, px(expiresAt)], source),
        ),
      );
      return r === 1;
    },

    getVersioned(key) {
      return own(batches.add(getVersionedKind, key));
    },

    compareAndSet(key, expected: KvVersion, value, expiresAt) {
      return own(
        batches.add(compareAndSetKind, {
          key,
          expected,
          value: asBuffer(value),
          expiresAt,
          next: newVersion(),
        }),
      );
    },

    async list({ prefix, cursor, limit, values }) {
      const nodes = await run(() => conn.scanNodes());
      const page = await run(() => scanPage(nodes, ks, prefix, cursor, limit));
      if (!values) {
        let keys = page.keys;
        if (page.carried > 0) {
          // Keys the cursor carried are listed only if they exist (the cursor came from the caller).
          const carried = keys.slice(0, page.carried);
          const found = await mget(carried);
          keys = [...carried.filter((_, i) => found[i] !== null), ...keys.slice(page.carried)];
        }
        return { items: keys.map((k) => ({ key: k.slice(nsLen) })), cursor: page.cursor };
      }
      const vals = await mget(page.keys);
      const items: Array<{ key: string; value: Uint8Array }> = [];
      page.keys.forEach((k, i) => {
        const v = vals[i];
        if (v) items.push({ key: k.slice(nsLen), value: v });
      });
      return { items, cursor: page.cursor };
    },

    async clear(prefix) {
      const nodes = await run(() => conn.scanNodes());
      const match = ks.match(prefix);
      for (const node of nodes) {
        let c = "0";
        do {
          const res = await run(() => node.scan(c, match, 500));
          const doomed: string[] = [];
          for (const k of res.keys) {
            doomed.push(k);
            if (!ks.isVersionRecord(k)) doomed.push(ks.version(k.slice(nsLen)));
          }
          if (conn.cluster) {
            // A value and its version record share a slot: one UNLINK per pair.
            const pairs: Promise<void>[] = [];
            for (let i = 0; i < doomed.length; ) {
              const k = doomed[i] as string;
              const n = ks.isVersionRecord(k) ? 1 : 2;
              const group = doomed.slice(i, i + n);
              pairs.push(run(() => cmd.unlink(group)).then(() => undefined));
              i += n;
            }
            await Promise.all(pairs);
          } else await unlinkAll(doomed);
          c = res.cursor;
        } while (c !== "0");
      }
    },

    async close() {
      batches.flush();
      watchdog.stop();
      await conn.close();
    },
  };
}

/**
 * A key-value store on Redis or Valkey (7+), standalone, Sentinel or Cluster.
 * Values are stored as raw bytes under `<namespace><key>` with native
 * millisecond expiry; `setIfAbsent` and `compareAndSet` are atomic.
 *
 * @example
 * import { createRedisStore } from "@kvsession/kv-redis";
 * const store = createRedisStore({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", namespace: "myapp:" });
 * await store.set("greeting", new TextEncoder().encode("hello"), { ttl: 60_000 });
 * console.log(new TextDecoder().decode(await store.get("greeting")));
 * await store.close();
 */
export function createRedisStore(options: RedisStoreOptions = {}): KvStore {
  return createStore(redisDriver(options));
}
