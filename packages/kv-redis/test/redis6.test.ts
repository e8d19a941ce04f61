import { randomBytes } from "node:crypto";
// node-redis v6, installed beside v5 under an npm alias ("redis6": "npm:redis@^6"): an app's own
// client of the other major, which the store must accept (types) and drive (conformance).
import { KvConnectionError, KvTimeoutError } from "@kvsession/kv";
import { requireService, runStoreConformance } from "@kvsession/kv-test-suite";
import { pingRedis as ping } from "@kvsession/test-helpers";
import {
  createClient,
  createCluster,
  createSentinel,
  ErrorReply,
  MaxCommandRedirectionsError,
  TimeoutError,
} from "redis6";
import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import { refusal, toKvError } from "../src/errors.js";
import { createRedisStore, type RedisLike, type RedisStoreOptions } from "../src/index.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const namespace = `kvtest6:${randomBytes(6).toString("hex")}:`;

/**
 * Type-level: a redis@6 client, cluster and sentinel are accepted as `client` (the package's
 * typecheck compiles this file; `redis` there resolves to v5). Never called: nothing connects.
 */
function typeCheckOnly() {
  const client = createClient({ url, disableOfflineQueue: true });
  const cluster = createCluster({ rootNodes: [{ url }], defaults: { disableOfflineQueue: true } });
  const sentinel = createSentinel({ name: "m", sentinelRootNodes: [{ host: "127.0.0.1", port: 26379 }] });
  createRedisStore({ client, namespace: "a:" });
  createRedisStore({ client: cluster, namespace: "b:" });
  createRedisStore({ client: sentinel, namespace: "c:" });
  // Clients with modules, scripts or RESP3 are node-redis clients too.
  createRedisStore({ client: createClient({ RESP: 3 }) });
  expectTypeOf(client).toExtend<RedisLike>();
  expectTypeOf(cluster).toExtend<RedisLike>();
  expectTypeOf<{ client: typeof client }>().toExtend<RedisStoreOptions>();
  // Not a node-redis client: rejected.
  // @ts-expect-error a plain object is no client
  createRedisStore({ client: { get: async () => null } });
}

describe("redis@6 types", () => {
  it("compile (see typeCheckOnly, checked by the package's typecheck)", () => {
    expect(typeof typeCheckOnly).toBe("function");
  });
});

describe("redis@6 errors", () => {
  it("reads a redirections error as the MOVED it wraps: refused, sent again, a connection error", () => {
    const moved = new ErrorReply("MOVED 3999 127.0.0.1:6381");
    const wrapped = new MaxCommandRedirectionsError(moved);
    expect(refusal(wrapped)).toBe("MOVED");
    const e = toKvError(wrapped, "here");
    expect(e).toBeInstanceOf(KvConnectionError);
    expect(e.cause).toBe(moved);
    expect(toKvError(new MaxCommandRedirectionsError(), "here")).toBeInstanceOf(KvConnectionError);
    // Its own per-command timeout (5 s by default in v6) is a timeout.
    expect(toKvError(new TimeoutError(), "here")).toBeInstanceOf(KvTimeoutError);
  });
});

if (await requireService(`Redis at ${url}`, () => ping(url))) {
  // The store on a redis@6 client of the caller's own, which the test connects and closes.
  const client = createClient({ url, disableOfflineQueue: true });
  client.on("error", () => {});
  await client.connect();
  afterAll(() => client.destroy());
  runStoreConformance("kv-redis (standalone, redis@6 client)", () => createRedisStore({ client, namespace }));

  describe("kv-redis with a redis@6 client", () => {
    it("stores raw bytes under the namespace with native expiry, and leaves the client open", async () => {
      const ns = `${namespace}own:`;
      const store = createRedisStore({ client, namespace: ns });
      await store.set("k", new TextEncoder().encode("raw bytes"), { ttl: 60_000 });
      expect(await client.get(`${ns}k`)).toBe("raw bytes");
      expect(await client.pTTL(`${ns}k`)).toBeGreaterThan(0);
      await store.clear();
      expect(await client.exists(`${ns}k`)).toBe(0);
      await store.close();
      expect(client.isReady).toBe(true);
    });
  });
}
