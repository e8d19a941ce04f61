import { randomBytes } from "node:crypto";
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
  type KvStore,
  type KvVersion,
} from "@kvsession/kv";
import type { RedisClientOptions, RedisClusterOptions, RedisSentinelOptions } from "redis";
import { type Commands, openConnection, type RedisLike } from "./connection.js";
import { toKvError } from "./errors.js";
import { createKeySpace } from "./keys.js";
import { scanPage } from "./list.js";
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
   * How long an operation waits for a (re)connection before failing with
   * KvConnectionError. Default 1000 ms, and 5000 ms before the store's first
   * connection (which may include DNS, TLS and a cluster's slot discovery).
   */
  connectWaitMs?: number;
  /** How long an operation waits for an answer before failing with KvTimeoutError; 0 disables. Default 5000 ms. */
  commandTimeoutMs?: number;
  /** Largest value accepted. Default 512 MiB, Redis's own `proto-max-bulk-len`. */
  maxValueBytes?: number;
  /**
   * Keep compare-and-set versions (default true). Every plain write must then
   * also drop the key's version record, so `set` is one `EVALSHA` instead of
   * one `SET` (about 3 µs more server time per write, see docs/benchmarks.md).
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
 * Operations one batched command carries at most: 32, not the coalescer's default 16. At 64 in
 * flight the client's fixed work per command is most of a small write's cost, and 64 callers then
 * cost two commands instead of four (bench `redis`, 16 vs 32 alternated by hand, 4 rounds: 100 B
 * versioned sets +11%, `versions: false` sets +14%, 100 B gets +7%).
 */
const MAX_BATCH = 32;
/**
 * Bytes of values one batched write carries at most (16 writes of 10 KiB). Redis starts on a command
 * only once all of it has arrived, so a big one leaves the server idle while the client writes it:
 * 32 writes of 10 KB per transaction ran 10–12% slower than 16 (bench `redis`, 64 in flight, 4
 * alternated rounds), 64 ran 25% slower.
 */
const MAX_BATCH_BYTES = 16 * 10 * 1024;
const valueBytes = (w: { value: Buffer }) => w.value.length;

/**
 * The Redis/Valkey driver behind `createRedisStore`, for composing with
 * other `@kvsession/kv` wrappers.
 *
 * @example
 * import { createStore } from "@kvsession/kv";
 * const store = createStore(redisDriver({ url: process.env.REDIS_URL }));
 */
export function redisDriver(options: RedisStoreOptions = {}): KvDriver {
  const ks = createKeySpace(options.namespace ?? "kv:");
  const nsLen = ks.namespace.length;
  const conn = openConnection({
    url: options.url,
    client: options.client,
    cluster: options.cluster,
    sentinel: options.sentinel,
    clientOptions: options.clientOptions,
    connectWaitMs: options.connectWaitMs ?? 1000,
    firstConnectWaitMs: options.connectWaitMs ?? 5000,
  });
  const cmd: Commands = conn.cmd;
  const watchdog = createWatchdog(options.commandTimeoutMs ?? 5000, conn.where);
  const batches = createCoalescer(MAX_BATCH, MAX_BATCH_BYTES);
  const fail = (e: unknown): never => {
    throw toKvError(e, conn.where);
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
    if (wait) return wait.then(() => watchdog.track(op(), map, fail), fail).catch(fail);
    let p: Promise<T>;
    try {
      p = op();
    } catch (e) {
      p = Promise.reject(e);
    }
    return watchdog.track(p, map, fail);
  }

  function evalScript(s: Script, keys: string[], args: Array<string | Buffer>): Promise<unknown> {
    return cmd.evalSha(s.sha, { keys, arguments: args }).catch((e: unknown) => {
      // After a server restart or SCRIPT FLUSH the cache is empty: EVAL loads it again.
      if (e instanceof Error && e.message.startsWith("NOSCRIPT"))
        return cmd.eval(s.source, { keys, arguments: args });
      throw e;
    });
  }

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

  /** `send` once per slot group (once in all on a single server), results back in item order. */
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

  /** Concurrent writes of either kind: one transaction per Cluster slot (`setTransaction`). */
  const setMany = (ws: Write[]) =>
    perSlot(ws, dataKeyOf, (g) =>
      run(
        () => setTransaction(g),
        () => noReplies(g),
      ),
    );
  const versionedSet: BatchKind<Write, void> = {
    one: (w) => run(() => evalScript(SET, pairOf(w.key), [w.value, px(w.expiresAt)]), done),
    many: setMany,
    bytes: valueBytes,
  };
  /**
   * Several plain writes as one MULTI/EXEC (per Cluster slot): the writes without expiry as one `MSET`
   * (a write with one, a `SET … PX`, ends the run, so a key written twice keeps the later value), then,
   * with versions, one `DEL` of their version records. The same work in a looping script cost the
   * server twice the CPU per write, a Lua string per argument and a `redis.call` per command (bench
   * `redis`, 100 B at 64 in flight: 2.5–3.2 µs vs 5.1–5.7 µs of redis-server CPU per write, 1.2–1.45x
   * the writes/s). A transaction the server refuses (out of memory) fails as a whole, and the
   * coalescer then retries its writes one by one, so each gets its own typed error.
   */
  function setTransaction(g: Write[]): Promise<unknown> {
    const tx = cmd.multi();
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
  const plainSetKind: BatchKind<Write, void> = {
    one: (w) => {
      const k = ks.data(w.key);
      const at = w.expiresAt;
      return run(() => (at === undefined ? cmd.set(k, w.value) : cmd.set(k, w.value, pxOption(at))), done);
    },
    many: setMany,
    bytes: valueBytes,
  };

  /**
   * Without versions a lone write is one `SET`, and concurrent ones the same transaction minus the
   * `DEL`: 100-byte writes at 64 in flight ran at 0.92x raw node-redis as pipelined `SET`s and 1.33x
   * as transactions, 10 KB writes 0.93x and 2.7x (bench `redis`, redis-server CPU per write 11.7 µs
   * vs 4.3 µs for 10 KB).
   */
  const setKind = versions ? versionedSet : plainSetKind;
  const set = (key: string, value: Uint8Array, expiresAt: number | undefined): Promise<void> =>
    batches.add(setKind, { key, value: asBuffer(value), expiresAt });

  const getKind: BatchKind<string, DriverEntry | undefined> = {
    one: (k) => run(() => cmd.get(k), toEntry),
    many: (redisKeys) => mget(redisKeys).then((vals) => vals.map(toEntry)),
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
   * (a script costs the server about three times as much, measured). Only a value without a
   * version record takes the script, which writes one.
   */
  const getVersionedKind: BatchKind<string, Versioned> = {
    one: (key) =>
      run(
        () => cmd.mGet(versionedPairs([key])),
        (r) => fromMget(r, 0),
      ).then((v) => v ?? lazyVersion(key)),
    many: (keys) =>
      perSlot(keys, ks.data, (g) =>
        run(
          () => cmd.mGet(versionedPairs(g)),
          (r) => g.map((_, i) => fromMget(r, i)),
        ),
      ).then((got) => Promise.all(got.map((v, i) => v ?? lazyVersion(keys[i] as string)))),
  };

  interface Swap extends Write {
    expected: KvVersion;
  }
  const casArgs = (w: Swap) => [w.expected ?? "", w.value, px(w.expiresAt), newVersion()];
  const compareAndSetKind: BatchKind<Swap, boolean> = {
    one: (w) => run(() => evalScript(COMPARE_AND_SET, pairOf(w.key), casArgs(w)), isOne),
    // One looping script per Cluster slot: each item's two keys and four arguments laid end to end
    // (written out: `flatMap` here was 5% of the client's time on batched writes, profiled).
    many: (ws) =>
      perSlot(ws, dataKeyOf, (g) =>
        run(
          () => {
            const keys = new Array<string>(2 * g.length);
            const args = new Array<string | Buffer>(4 * g.length);
            for (let i = 0; i < g.length; i++) {
              const w = g[i] as Swap;
              keys[2 * i] = ks.data(w.key);
              keys[2 * i + 1] = ks.version(w.key);
              args[4 * i] = w.expected ?? "";
              args[4 * i + 1] = w.value;
              args[4 * i + 2] = px(w.expiresAt);
              args[4 * i + 3] = newVersion();
            }
            return evalScript(COMPARE_AND_SET_MANY, keys, args);
          },
          (r) => (r as unknown[]).map(isOne),
        ),
      ),
    bytes: valueBytes,
  };

  const del = versions
    ? (key: string): Promise<boolean> =>
        run(() => evalScript(DELETE, [ks.data(key), ks.version(key)], []), isOne)
    : (key: string): Promise<boolean> => {
        const k = ks.data(key);
        return run(() => cmd.unlink([k]), isOne);
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
      return batches.add(getKind, ks.data(key));
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
        return (await run(() => cmd.set(k, v, opts()))) !== null;
      }
      const v = asBuffer(value);
      const r = await run(() =>
        evalScript(SET_IF_ABSENT, [ks.data(key), ks.version(key)], [v, px(expiresAt)]),
      );
      return r === 1;
    },

    getVersioned(key) {
      return batches.add(getVersionedKind, key);
    },

    compareAndSet(key, expected: KvVersion, value, expiresAt) {
      return batches.add(compareAndSetKind, { key, expected, value: asBuffer(value), expiresAt });
    },

    async list({ prefix, cursor, limit, values }) {
      const nodes = await run(() => conn.scanNodes());
      const page = await run(() => scanPage(nodes, ks, prefix, cursor, limit));
      if (!values) return { items: page.keys.map((k) => ({ key: k.slice(nsLen) })), cursor: page.cursor };
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
