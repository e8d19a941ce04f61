import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createFsStore } from "@kvsession/kv-fs";
import { fromKeyv } from "@kvsession/kv-keyv";
import { createPostgresStore } from "@kvsession/kv-postgres";
import { createRedisStore } from "@kvsession/kv-redis";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { requireService } from "@kvsession/kv-test-suite";
import Database from "better-sqlite3";
import { Keyv } from "keyv";
import pg from "pg";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A store of one driver, fresh and empty, with what a scenario needs to look behind it. */
export interface OpenedStore {
  store: KvStore;
  /** kv-fs: the store's directory; its parent holds nothing else (walk it to prove no path escape). */
  dir?: string;
  /** SQL engines: rows in the store's table, counted by the engine itself, not through the driver. */
  rows?: () => Promise<number>;
  /** SQL engines: a table `x` next to the store's, created before the store; false once it is gone. */
  canaryIntact?: () => Promise<boolean>;
  /** Closes the store and removes everything it created (files, Redis keys, the PostgreSQL schema). */
  dispose(): Promise<void>;
}

export interface DriverCase {
  name: "memory" | "sqlite" | "fs" | "redis" | "postgres" | "keyv-map";
  /**
   * Opens a new store. `maxValueBytes` is passed to drivers that take it (all but memory and the
   * Keyv bridge's Map, which keep their defaults: see `configurableLimit`).
   */
  open(options?: { maxValueBytes?: number }): Promise<OpenedStore>;
  /** Whether `open({ maxValueBytes })` is honoured. */
  configurableLimit: boolean;
}

const tempParent = (label: string) => mkdtempSync(join(tmpdir(), `kvsession-rel-${label}-`));
const unique = (label: string) => `rel_${label}_${process.pid}_${randomBytes(4).toString("hex")}`;

const memory: DriverCase = {
  name: "memory",
  configurableLimit: false,
  async open() {
    const store = createMemoryStore();
    return { store, dispose: () => store.close() };
  },
};

const sqlite: DriverCase = {
  name: "sqlite",
  configurableLimit: true,
  async open(options = {}) {
    const parent = tempParent("sqlite");
    const path = join(parent, "store.db");
    // The canary is created first, by the engine's own client: an injected DROP TABLE x would remove it.
    const raw = new Database(path);
    raw.exec("CREATE TABLE x (id INTEGER)");
    const store = createSqliteStore({ path, table: "kv", ...options });
    return {
      store,
      rows: async () => (raw.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n,
      canaryIntact: async () =>
        (
          raw
            .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'x'")
            .get() as {
            n: number;
          }
        ).n === 1,
      async dispose() {
        await store.close();
        raw.close();
        rmSync(parent, { recursive: true, force: true });
      },
    };
  },
};

const fs: DriverCase = {
  name: "fs",
  configurableLimit: true,
  async open(options = {}) {
    const parent = tempParent("fs");
    const dir = join(parent, "store");
    mkdirSync(dir);
    const store = createFsStore({ dir, durability: "none", ...options });
    return {
      store,
      dir,
      async dispose() {
        await store.close();
        rmSync(parent, { recursive: true, force: true });
      },
    };
  },
};

const redis: DriverCase = {
  name: "redis",
  configurableLimit: true,
  async open(options = {}) {
    // A namespace of this store only: clear() at the end deletes exactly the keys it wrote.
    const store = createRedisStore({ url: REDIS_URL, namespace: `${unique("redis")}:`, ...options });
    return {
      store,
      async dispose() {
        await store.clear();
        await store.close();
      },
    };
  },
};

const postgres: DriverCase = {
  name: "postgres",
  configurableLimit: true,
  async open(options = {}) {
    // A schema of this store only, first on the search path, so an injected unqualified `x` would hit the canary.
    const schema = unique("pg");
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.query(`CREATE TABLE "${schema}".x (id int)`);
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4, options: `-c search_path=${schema}` });
    pool.on("error", () => {});
    const store = await createPostgresStore({ pool }, { schema, table: "kv", ...options });
    const count = async (sql: string) => Number((await admin.query(sql)).rows[0].n);
    return {
      store,
      rows: () => count(`SELECT count(*) AS n FROM "${schema}".kv`),
      canaryIntact: async () =>
        (await count(
          `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = '${schema}' AND table_name = 'x'`,
        )) === 1,
      async dispose() {
        await store.close();
        await pool.end();
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.end();
      },
    };
  },
};

const keyvMap: DriverCase = {
  name: "keyv-map",
  configurableLimit: true,
  async open(options = {}) {
    // Keyv over its default Map: no atomic primitives, so the store declares no compare-and-set.
    const store = fromKeyv(new Keyv(), options);
    return { store, dispose: () => store.close() };
  },
};

async function redisReachable(): Promise<void> {
  const probe = createRedisStore({ url: REDIS_URL, namespace: `${unique("probe")}:` });
  try {
    await probe.get("probe");
  } finally {
    await probe.close();
  }
}

async function postgresReachable(): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  await client.connect();
  await client.end();
}

/**
 * Every real driver a scenario runs on. Call at the top level of a test file: Redis and
 * PostgreSQL are probed with `requireService`, so when one is missing the file gets a skipped
 * test on a laptop and a failing one in CI, and the list leaves it out.
 *
 * @example
 * const drivers = await realDrivers();
 * describe.each(drivers)("$name", (d) => { it("…", async () => { const s = await d.open(); … await s.dispose(); }); });
 */
export async function realDrivers(): Promise<DriverCase[]> {
  const out: DriverCase[] = [memory, sqlite, fs];
  if (await requireService(`Redis at ${REDIS_URL}`, redisReachable, 7000)) out.push(redis);
  if (await requireService(`PostgreSQL at ${DATABASE_URL}`, postgresReachable)) out.push(postgres);
  out.push(keyvMap);
  return out;
}

/** The drivers without a server process, for properties that run thousands of cases. */
export const embeddedDrivers: readonly DriverCase[] = [memory, sqlite, fs];
