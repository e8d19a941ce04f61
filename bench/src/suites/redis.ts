import { spawnSync } from "node:child_process";
import KeyvRedis, { Keyv } from "@keyv/redis";
import { type KvStore, text, withCodec } from "@kvsession/kv";
import { createRedisStore } from "@kvsession/kv-redis";
import { type RedisServer, startRedis } from "@kvsession/test-helpers";
import { createClient, RESP_TYPES } from "redis";
import type { BenchCase, BenchSuite } from "../types.js";
import { type Api, bytesOf, textOf } from "../values.js";

/**
 * A private `redis-server` (started by prepare, pinned beside the other servers) unless REDIS_URL names
 * one: the measurement processes find its URL in the environment they inherit.
 */
const PRIVATE_URL = "KVSESSION_BENCH_REDIS_URL";
const urlOf = () => process.env.REDIS_URL ?? process.env[PRIVATE_URL] ?? "redis://127.0.0.1:6379";
let server: RedisServer | undefined;
const KEYS = 10_000;
const key = (i: number) => `k${i % KEYS}`;

/** The Lua of a versioned `set` in @kvsession/kv-redis (its scripts.ts), for the raw client to run. */
const SET_AND_DROP_VERSION = `
if ARGV[2] == "" then redis.call("SET", KEYS[1], ARGV[1]) else redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) end
redis.call("DEL", KEYS[2])
return 1`;

/**
 * Every key of this suite starts with "bench:". They are dropped before a run (what an interrupted run
 * left) and after it, so a shared server (REDIS_URL) is left as it was found: suites elsewhere that SCAN the
 * whole database (@keyv/redis's clear) slow down with every key left behind.
 */
async function dropBenchKeys(): Promise<void> {
  await withClient(async (client) => {
    for await (const keys of client.scanIterator({ MATCH: "bench:*", COUNT: 1000 }))
      if (keys.length > 0) await client.unlink(keys);
  });
}

/** A throwaway raw client for set-up work, closed whatever happens. */
async function withClient(work: (client: ReturnType<typeof createClient>) => Promise<void>): Promise<void> {
  const client = createClient({ url: urlOf() });
  client.on("error", () => {});
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.close();
  }
}

/**
 * Writes the 10,000 values under `namespace` with a throwaway raw client: the same bytes every
 * node-redis-based case would write itself (a versioned `set` leaves no version record either), but
 * without leaving the measuring process a different history per case: pre-loading through the
 * versioned write script left V8 more garbage to compact during the reads that followed, whichever
 * store then read.
 */
async function preload(namespace: string, value: Buffer): Promise<void> {
  await withClient(async (client) => {
    for (let i = 0; i < KEYS; i += 500)
      await Promise.all(
        Array.from({ length: 500 }, (_, j) => client.set(`${namespace}${key(i + j)}`, value)),
      );
  });
}

function cases(op: "get" | "set", size: number, label: string): BenchCase[] {
  const bytes = bytesOf(size);
  const string = textOf(size);
  const make = <V>(
    name: string,
    role: BenchCase["role"],
    value: V,
    open: () => Promise<{ api: Api<V>; close(): Promise<void> }>,
    options: {
      /** The case's key prefix when a raw client can pre-load its values (every case but Keyv's). */
      namespace?: string;
      judge?: BenchCase["judge"];
    } = {},
  ): BenchCase => ({
    name,
    role,
    limit: role === "ours" ? plain : undefined,
    judge: options.judge,
    variant: `${op} ${label}`,
    async create() {
      // Pre-load (every get hits a stored value): the stored bytes by one raw client, Keyv's envelopes by Keyv.
      if (options.namespace !== undefined) await preload(options.namespace, bytes);
      const { api, close } = await open();
      if (options.namespace === undefined)
        for (let i = 0; i < KEYS; i += 500)
          await Promise.all(Array.from({ length: 500 }, (_, j) => api.set(key(i + j), value)));
      return {
        op: op === "get" ? (i: number) => api.get(key(i)) : (i: number) => api.set(key(i), value),
        close,
      };
    },
  });
  const plain = "node-redis v5 GET/SET, bytes";
  const ours =
    <V>(namespace: string, wrap: (s: KvStore) => Api<V>, versions = true) =>
    async () => {
      const store = createRedisStore({ url: urlOf(), namespace, ...(versions ? {} : { versions: false }) });
      return { api: wrap(store), close: () => store.close() };
    };
  const rawClient = async () => {
    const client = createClient({ url: urlOf() }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    client.on("error", () => {});
    await client.connect();
    return client;
  };
  return [
    make(
      "createRedisStore, bytes",
      "ours",
      bytes,
      ours("bench:ours:", (s) => s),
      {
        namespace: "bench:ours:",
        judge: ["limit"],
      },
    ),
    make(
      "createRedisStore, versions: false, bytes",
      "ours",
      bytes,
      ours("bench:nover:", (s) => s, false),
      { namespace: "bench:nover:", judge: ["limit"] },
    ),
    make(
      "createRedisStore + text codec, string",
      "ours",
      string,
      ours("bench:text:", (s) => withCodec(s, text)),
      { namespace: "bench:text:", judge: ["peer"] },
    ),
    make(
      plain,
      "limit",
      bytes,
      async () => {
        const client = await rawClient();
        const api: Api<Buffer> = {
          get: (k) => client.get(`bench:raw:${k}`),
          set: (k, v) => client.set(`bench:raw:${k}`, v),
        };
        return { api, close: () => client.close() };
      },
      { namespace: "bench:raw:" },
    ),
    ...(op === "set"
      ? [
          make(
            "node-redis v5 EVALSHA of the versioned set's script (SET + DEL of the version record)",
            "reference",
            bytes,
            async () => {
              const client = await rawClient();
              // The script a versioned set runs: the value, and the drop of its version record.
              const sha = await client.scriptLoad(SET_AND_DROP_VERSION);
              const api: Api<Buffer> = {
                get: (k) => client.get(`bench:same:${k}`),
                set: (k, v) =>
                  client.evalSha(sha, {
                    keys: [`bench:same:${k}`, `bench:same:v:${k}`],
                    arguments: [v, ""],
                  }),
              };
              return { api, close: () => client.close() };
            },
            { namespace: "bench:same:" },
          ),
        ]
      : []),
    make("Keyv + @keyv/redis, string", "peer", string, async () => {
      const keyv = new Keyv<string>({ store: new KeyvRedis(urlOf()), namespace: "bench:keyv" });
      keyv.on("error", () => {});
      return { api: keyv, close: () => keyv.disconnect() };
    }),
  ];
}

export default {
  title: "Redis: createRedisStore vs raw node-redis v5 (the limit) and Keyv + @keyv/redis (the peer)",
  inFlight: [1, 64],
  batches: [64],
  // At 1 in flight an operation is a loopback round trip and the client's work a few µs of it: the
  // verdicts there come from ours and the other case alternating 500-operation chunks in one process.
  interleaved: { inFlight: [1], chunk: 500 },
  // Enough that a measurement at 64 in flight outlasts this VM's short stalls; 1 in flight stops at
  // --max-seconds first either way.
  ops: 300_000,
  // The targets: near the raw client everywhere; ahead of Keyv at 64 in flight only.
  targets: (variant, inFlight) => ({
    limit: 0.9,
    peer: inFlight < 64 ? undefined : variant.endsWith("10 KB") ? 1.5 : 1.2,
  }),
  async prepare() {
    if (process.env.REDIS_URL === undefined) {
      server = await startRedis();
      spawnSync("taskset", ["-cp", "1", String(server.process.pid)], { stdio: "ignore" });
      process.env[PRIVATE_URL] = server.url;
    }
    await dropBenchKeys();
  },
  async finish() {
    await dropBenchKeys();
    await server?.stop();
  },
  notes: [
    "A private local `redis-server` (no persistence), loopback TCP, 10,000 keys pre-loaded per case, each case under its own key prefix (by one throwaway raw client for every case whose stored bytes a raw client can write, so every measuring process starts from the same history; through Keyv for Keyv's envelopes).",
    "The limit is what a user would otherwise write: a bare node-redis v5 client issuing `GET` / `SET` with Buffer values and replies. Our store with raw bytes is judged against it, with versions (the default: a plain write also drops the key's compare-and-set version record, so it can never leave a stale version a later compare-and-set would accept) and with `versions: false` (a plain `SET`).",
    "The *reference* row runs, by hand on the raw client, the script a lone versioned set runs (`EVALSHA`: SET + DEL of the version record): a diagnostic of what versioning costs, not a target.",
    "Keyv is given what its users store, a string (the same bytes), and judged against our store with the text codec storing that string; Keyv wraps it in the JSON text of `{ value, expires }`.",
    "Our store sends the operations issued in one turn of the event loop as one command (gets as `MGET`s, concurrent sets as one `MULTI`/`EXEC`): at 1 in flight that is the same single command as the limit; at 64 in flight it is fewer, larger commands. How 64 operations are kept in flight changes what there is to group: *64* keeps 64 in flight continuously (each of 64 workers starts its next operation when its last one settles), *64, batches* awaits `Promise.all` over 64 operations, then issues the next 64.",
    "Targets: ≥ 0.9x the limit everywhere; ≥ 1.2x Keyv at 100 B and ≥ 1.5x at 10 KB with 64 in flight.",
  ].join(" "),
  cases: [
    ...cases("get", 100, "100 B"),
    ...cases("get", 10 * 1024, "10 KB"),
    ...cases("set", 100, "100 B"),
    ...cases("set", 10 * 1024, "10 KB"),
  ],
} satisfies BenchSuite;
