import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KvStore } from "@kvsession/kv";

/** Where the default SQLite file goes: the example's own `.data/` folder (ignored by git). */
export const DEFAULT_SQLITE_PATH = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  ".data",
  "sessions.db",
);

/**
 * The store the demo runs on: `REDIS_URL` → Redis, `DATABASE_URL` → PostgreSQL,
 * otherwise a SQLite file that needs no set-up (`SQLITE_PATH` to move it).
 * Drivers are imported only when chosen.
 *
 * @example
 * const { store, description } = await openStore(process.env);
 */
export async function openStore(
  env: Record<string, string | undefined>,
): Promise<{ store: KvStore; description: string }> {
  if (env.REDIS_URL) {
    const { createRedisStore } = await import("@kvsession/kv-redis");
    return { store: createRedisStore({ url: env.REDIS_URL, namespace: "pin-demo:" }), description: "Redis" };
  }
  if (env.DATABASE_URL) {
    const { createPostgresStore } = await import("@kvsession/kv-postgres");
    const store = await createPostgresStore({ connectionString: env.DATABASE_URL }, { table: "pin_demo" });
    return { store, description: "PostgreSQL (table pin_demo)" };
  }
  const path = env.SQLITE_PATH || DEFAULT_SQLITE_PATH;
  mkdirSync(dirname(path), { recursive: true });
  const { createSqliteStore } = await import("@kvsession/kv-sqlite");
  return { store: createSqliteStore({ path }), description: `SQLite file ${path}` };
}
