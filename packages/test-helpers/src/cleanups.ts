import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KvStore } from "@kvsession/kv";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { afterEach } from "vitest";

export type Cleanup = () => Promise<void> | void;

/**
 * A list of cleanups that runs after each test of the file, newest first (a server closes before
 * the store it uses). Call once per test file.
 */
export function cleanupsAfterEach(): Cleanup[] {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}

/** A SQLite store in a fresh temporary directory, closed and removed by `cleanups`. */
export function tempSqliteStore(cleanups: Cleanup[], name: string): KvStore {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const store = createSqliteStore({ path: join(dir, "sessions.db") });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  return store;
}
