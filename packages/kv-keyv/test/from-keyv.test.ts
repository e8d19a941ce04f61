import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvPostgres from "@keyv/postgres";
import KeyvRedis from "@keyv/redis";
import KeyvSqlite from "@keyv/sqlite";
import { requireService, runStoreConformance } from "@kvsession/kv-test-suite";
import { Keyv } from "keyv5";
import { Keyv as Keyv6, KeyvMemoryAdapter } from "keyv6";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { fromKeyv } from "../src/index.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
/**
 * @keyv/redis lists and clears by SCAN over the whole database, so its cost grows with every key
 * stored there by anyone (51k leftover benchmark keys made the model check time out). Unless the
 * URL names a database, these tests use one of their own.
 */
const KEYV_REDIS_URL = (() => {
  const u = new URL(REDIS_URL);
  if (u.pathname === "" || u.pathname === "/") u.pathname = "/11";
  return u.toString();
})();
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

// Keyv's Map store, through a Keyv instance (its "keyv:" namespace prefix included). The neighbour is
// another Keyv namespace of the same length on the same Map.
let map = new Map<string, unknown>();
runStoreConformance(
  "kv-keyv fromKeyv(new Keyv()) over a Map",
  () => {
    map = new Map();
    return fromKeyv(new Keyv({ store: map }));
  },
  { neighbour: () => fromKeyv(new Keyv({ store: map, namespace: "kevy" })) },
);

// Keyv 6 over a Map: its store is Keyv 6's KeyvMemoryAdapter, which takes absolute deadlines and
// applies the namespace itself. The neighbour is another Keyv 6 namespace of the same length.
let map6 = new Map<string, unknown>();
runStoreConformance(
  "kv-keyv fromKeyv(new Keyv6()) over a Map",
  () => {
    map6 = new Map();
    return fromKeyv(new Keyv6({ store: map6, namespace: "keyv" }));
  },
  { neighbour: () => fromKeyv(new Keyv6({ store: map6, namespace: "kevy" })) },
);

// The SQLite adapter alone, on a temp file.
const dir = mkdtempSync(join(tmpdir(), "kv-keyv-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
runStoreConformance("kv-keyv fromKeyv(@keyv/sqlite)", () =>
  fromKeyv(new KeyvSqlite({ uri: `sqlite://${join(dir, "keyv.sqlite")}`, iterationLimit: 500 })),
);

// A Keyv 5 adapter under Keyv 6: Keyv 6 wraps it in its KeyvBridgeAdapter, which the store then uses.
runStoreConformance("kv-keyv fromKeyv(new Keyv6(@keyv/sqlite))", () =>
  fromKeyv(
    new Keyv6({
      store: new KeyvSqlite({ uri: `sqlite://${join(dir, "keyv6.sqlite")}`, iterationLimit: 500 }),
      namespace: "app",
    }),
  ),
);

describe("kv-keyv fromKeyv: interop with the Keyv 6 instance it wraps", () => {
  it("writes records Keyv 6 reads back as the same bytes, and reads what Keyv 6 wrote", async () => {
    const keyv = new Keyv6({ store: new Map(), namespace: "app" });
    const store = fromKeyv(keyv);
    await store.set("bytes", new Uint8Array([0, 1, 254, 255]), { ttl: 60_000 });
    expect([...((await keyv.get("bytes")) as Uint8Array)]).toEqual([0, 1, 254, 255]);
    await keyv.set("text", ":colon text");
    expect(dec(await store.get("text"))).toBe(":colon text");
    // Keyv 6 sees the deadline the store wrote, to the millisecond.
    const raw = (await keyv.getRaw("bytes")) as { expires: number };
    expect(raw.expires).toBe((await store.getEntry("bytes"))?.expiresAt);
    const listed: string[] = [];
    for await (const k of store.keys("")) listed.push(k);
    expect(listed).toEqual(["bytes", "text"]);
  });

  it("gives a Keyv 6 adapter an absolute deadline: an entry with a TTL is stored, not already expired", async () => {
    const adapter = new KeyvMemoryAdapter(new Map());
    const store = fromKeyv(adapter);
    await store.setMany([{ key: "many", value: enc("m"), ttl: 60_000 }]);
    await store.set("one", enc("o"), { ttl: 60_000 });
    expect(dec(await store.get("many"))).toBe("m");
    expect(dec(await store.get("one"))).toBe("o");
    expect(await store.getEntry("one")).toMatchObject({ expiresAt: expect.any(Number) });
  });

  it("refuses a Keyv 6 instance whose records are compressed, encrypted or not serialised", () => {
    const codec = { compress: async (v: string) => v, decompress: async (v: string) => v };
    expect(() => fromKeyv(new Keyv6({ compression: codec }))).toThrow(/compression/);
    const cipher = { encrypt: (v: string) => v, decrypt: (v: string) => v };
    expect(() => fromKeyv(new Keyv6({ encryption: cipher }))).toThrow(/encryption/);
    expect(() => fromKeyv(new Keyv6({ serialization: false }))).toThrow(/serialization/);
  });
});

describe("kv-keyv fromKeyv: interop with the Keyv instance it wraps", () => {
  it("writes records a plain Keyv reads back as the same bytes, and reads what Keyv wrote", async () => {
    const keyv = new Keyv();
    const store = fromKeyv(keyv);
    await store.set("bytes", new Uint8Array([0, 1, 254, 255]), { ttl: 60_000 });
    const got = (await keyv.get("bytes")) as Buffer;
    expect(Buffer.isBuffer(got)).toBe(true);
    expect([...got]).toEqual([0, 1, 254, 255]);
    await keyv.set("text", ":colon text");
    expect(dec(await store.get("text"))).toBe(":colon text");
    await keyv.set("obj", { a: 1 });
    expect(dec(await store.get("obj"))).toBe('{"a":1}');
    // The entry carries its deadline, so Keyv expires it too.
    const raw = (await keyv.getRaw("bytes")) as { expires: number };
    expect(raw.expires).toBe((await store.getEntry("bytes"))?.expiresAt);
  });

  it("lists in UTF-16 code-unit order (JavaScript's string order), as its README says", async () => {
    const store = fromKeyv(new Keyv());
    // U+1F600 is a surrogate pair (0xD83D…): before U+FFFF in UTF-16 order, after it in code-point order.
    const keys = ["\uffff", "\u{1f600}", "\ue000", "z"];
    await store.setMany(keys.map((key) => ({ key, value: enc(key) })));
    const listed: string[] = [];
    for await (const k of store.keys("", 1)) listed.push(k);
    expect(listed).toEqual(["z", "\u{1f600}", "\ue000", "\uffff"]);
    expect(listed).toEqual([...keys].sort());
  });

  it("refuses a Keyv instance whose records are compressed", () => {
    const keyv = new Keyv({
      compression: { compress: async (v: unknown) => v, decompress: async (v: unknown) => v },
    });
    expect(() => fromKeyv(keyv)).toThrow(/compression/);
  });

  it("declares what Keyv cannot do atomically, and refuses it", async () => {
    const store = fromKeyv(new Keyv());
    expect(store.capabilities).toMatchObject({ setIfAbsent: false, compareAndSet: false, ttl: "emulated" });
    await expect(store.setIfAbsent("k", enc("v"))).rejects.toMatchObject({ code: "KV_UNSUPPORTED" });
  });

  it("refuses listing on an adapter without an iterator, with KvUnsupportedError", async () => {
    const m = new Map<string, unknown>();
    const bare = {
      get: (k: string) => m.get(k),
      set: (k: string, v: unknown) => m.set(k, v),
      delete: (k: string) => m.delete(k),
      clear: () => m.clear(),
    };
    const store = fromKeyv(bare);
    await store.set("k", enc("v"));
    expect(dec(await store.get("k"))).toBe("v");
    await expect(store.listKeys()).rejects.toMatchObject({ code: "KV_UNSUPPORTED" });
  });
});

/** A bare PING over a socket, so the probe needs no Redis client of its own. */
const probeRedis = () =>
  new Promise<void>((resolve, reject) => {
    const { hostname, port } = new URL(REDIS_URL);
    const sock = connect(Number(port || 6379), hostname, () => sock.write("PING\r\n"));
    sock.once("data", (d) => {
      sock.destroy();
      if (d.toString().startsWith("+PONG")) resolve();
      else reject(new Error(`unexpected answer ${JSON.stringify(d.toString().slice(0, 40))}`));
    });
    sock.once("error", reject);
  });

if (await requireService(`Redis at ${REDIS_URL}`, probeRedis)) {
  // A namespace of this run's own, so the conformance suite's clear() never reaches other data on the server.
  const namespace = `kvkeyv${process.pid}${Date.now().toString(36)}`;
  runStoreConformance(
    "kv-keyv fromKeyv(@keyv/redis)",
    () => fromKeyv(new KeyvRedis(KEYV_REDIS_URL, { namespace, throwOnErrors: true })),
    { ttlSlackMs: 60 },
  );

  it("fromKeyv(@keyv/redis): a stopped Redis gives a typed connection error, not a silent miss", async () => {
    const store = fromKeyv(
      new KeyvRedis(
        { url: "redis://127.0.0.1:1", socket: { reconnectStrategy: false, connectTimeout: 500 } },
        { throwOnErrors: true },
      ),
    );
    const err = await store.get("k").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "KV_CONNECTION" });
  });
}

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const probePg = async () => {
  const c = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
};
if (await requireService(`PostgreSQL at ${DATABASE_URL}`, probePg)) {
  const table = `kvt_keyvpg_${process.pid}_${Date.now().toString(36)}`;
  afterAll(async () => {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP TABLE IF EXISTS "${table}"`);
    await c.end();
  });
  // @keyv/postgres keys are VARCHAR(255): declared through maxKeyBytes, so the suite tests that limit.
  runStoreConformance("kv-keyv fromKeyv(@keyv/postgres)", () =>
    fromKeyv(new KeyvPostgres({ uri: DATABASE_URL, table, iterationLimit: 500 }), { maxKeyBytes: 255 }),
  );
}
