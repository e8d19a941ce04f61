import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createFsStore } from "@kvsession/kv-fs";
import { createPostgresStore } from "@kvsession/kv-postgres";
import { createRedisStore } from "@kvsession/kv-redis";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { requireService } from "@kvsession/kv-test-suite";
import keyvTestSuite, { keyvIteratorTests } from "keyv-test-suite5";
import pg from "pg";
import * as vitest from "vitest";
import { afterAll, beforeAll, describe } from "vitest";
import { toKeyv } from "../src/index.js";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A bare PING over a socket, so the probe needs no Redis client of its own. */
export const probeRedis = () =>
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

export const probePg = async () => {
  const c = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
};

export interface StoreUnderTest {
  name: string;
  /** A store of its own, on storage no other test uses. */
  open(): KvStore | Promise<KvStore>;
}

/**
 * Every kvsession driver, each on storage of this run only (a temp file or directory, a Redis
 * namespace, a PostgreSQL table), so clear() in Keyv's suite never reaches anyone else's keys.
 * A service that cannot be reached is reported by requireService (a failure when CI=true).
 */
export async function storesUnderTest(tag: string): Promise<StoreUnderTest[]> {
  const run = `${tag}${process.pid}${randomBytes(3).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), `kv-keyv-${tag}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const stores: StoreUnderTest[] = [
    { name: "memory", open: () => createMemoryStore() },
    { name: "SQLite", open: () => createSqliteStore({ path: join(dir, `s${n++}.sqlite`) }) },
    { name: "fs", open: () => createFsStore({ dir: join(dir, `fs${n++}`) }) },
  ];
  if (await requireService(`Redis at ${REDIS_URL}`, probeRedis))
    stores.push({
      name: "Redis",
      open: () => createRedisStore({ url: REDIS_URL, namespace: `kvkeyv:${run}:${n++}:` }),
    });
  if (await requireService(`PostgreSQL at ${DATABASE_URL}`, probePg)) {
    const tables: string[] = [];
    afterAll(async () => {
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      for (const t of tables) {
        await c.query(`DROP TABLE IF EXISTS "${t}"`);
        await c.query("DELETE FROM kvsession_meta WHERE table_name = $1", [t]).catch(() => {});
      }
      await c.end();
    });
    stores.push({
      name: "PostgreSQL",
      open: () => {
        const table = `kvt_${run}_${n++}`;
        tables.push(table);
        return createPostgresStore(
          { connectionString: DATABASE_URL, max: 2 },
          { table, sweepIntervalMs: false },
        );
      },
    });
  }
  return stores;
}

// biome-ignore lint/suspicious/noExplicitAny: Keyv 5 and Keyv 6 constructors share no declared type
export type KeyvClass = new (...args: any[]) => any;

/**
 * Runs Keyv's own @keyv/test-suite (the API, value and namespace tests, and the iterator tests)
 * through `toKeyv` over one kvsession store. `differences` names suite tests whose expectation is
 * Keyv 5's and that Keyv 6 answers otherwise by design: they are run as expected failures, with
 * the reason in their name, so a change on either side shows up.
 */
export function runKeyvTestSuite(
  title: string,
  Keyv: KeyvClass,
  open: () => KvStore | Promise<KvStore>,
  differences: Record<string, string> = {},
) {
  describe(title, () => {
    let store: KvStore;
    beforeAll(async () => {
      store = await open();
    });
    afterAll(() => store?.close());
    const it = (name: string, fn: vitest.TestFunction) =>
      name in differences ? vitest.it.fails(`${name} (${differences[name]})`, fn) : vitest.it(name, fn);
    const test = { ...vitest, it } as unknown as typeof vitest;
    // A new adapter each time, as the suite hands one to each Keyv it builds; all share the store.
    keyvTestSuite(test, Keyv as never, () => toKeyv(store));
    keyvIteratorTests(test, Keyv as never, () => toKeyv(store));
  });
}
