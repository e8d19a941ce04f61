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

/** A positive integer from the environment, or undefined when the variable is unset or empty. */
function msFrom(env: Record<string, string | undefined>, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`${name} must be a whole number of ms, got "${raw}"`);
  return n;
}

/**
 * The store the demo runs on: `REDIS_URL` → Redis, `DATABASE_URL` → PostgreSQL,
 * `KV_FS_DIR` → a directory (kv-fs), otherwise a SQLite file that needs no
 * set-up (`SQLITE_PATH` to move it). Drivers are imported only when chosen.
 * `STORE_TIMEOUT_MS` bounds how long a request waits for an unreachable Redis or
 * PostgreSQL (connect and command), `STORE_SWEEP_INTERVAL_MS` how often expired
 * sessions are reclaimed (SQLite, kv-fs, PostgreSQL).
 *
 * @example
 * const { store, description } = await openStore(process.env);
 */
export async function openStore(
  env: Record<string, string | undefined>,
): Promise<{ store: KvStore; description: string }> {
  const timeout = msFrom(env, "STORE_TIMEOUT_MS");
  const sweepIntervalMs = msFrom(env, "STORE_SWEEP_INTERVAL_MS");
  if (env.REDIS_URL) {
    const { createRedisStore } = await import("@kvsession/kv-redis");
    const store = createRedisStore({
      url: env.REDIS_URL,
      namespace: "pin-demo:",
      connectWaitMs: timeout,
      commandTimeoutMs: timeout,
    });
    return { store, description: "Redis" };
  }
  if (env.DATABASE_URL) {
    const { createPostgresStore } = await import("@kvsession/kv-postgres");
    const store = await createPostgresStore(
      {
        connectionString: env.DATABASE_URL,
        ...(timeout === undefined ? {} : { connectionTimeoutMillis: timeout, query_timeout: timeout }),
      },
      { table: "pin_demo", sweepIntervalMs },
    );
    return { store, description: "PostgreSQL (table pin_demo)" };
  }
  if (env.KV_FS_DIR) {
    const { createFsStore } = await import("@kvsession/kv-fs");
    const store = createFsStore({ dir: env.KV_FS_DIR, sweepIntervalMs });
    return { store, description: `directory ${env.KV_FS_DIR} (kv-fs)` };
  }
  const path = env.SQLITE_PATH || DEFAULT_SQLITE_PATH;
  mkdirSync(dirname(path), { recursive: true });
  const { createSqliteStore } = await import("@kvsession/kv-sqlite");
  return { store: createSqliteStore({ path, sweepIntervalMs }), description: `SQLite file ${path}` };
}
