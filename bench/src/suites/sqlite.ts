import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import { type KvStore, text, withCodec } from "@kvsession/kv";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import Database from "better-sqlite3";
import { Keyv } from "keyv";
import type { BenchCase, BenchSuite } from "../types.js";
import { type Api, bytesOf, textOf } from "../values.js";

const KEYS = 10_000;
const key = (i: number) => `k${i % KEYS}`;

type Opened<V> = { api: Api<V>; close(): Promise<void> };

function tempFile(): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "kvsession-bench-sqlite-"));
  return { path: join(dir, "bench.db"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The limit: better-sqlite3 with the same pragmas (WAL, synchronous NORMAL), a
 * key/value/deadline table and two prepared statements, the deadline checked in
 * JS — what a hand-written SQLite cache with TTLs does, minus versions and validation.
 */
function raw(): Opened<Uint8Array> {
  const f = tempFile();
  const db = new Database(f.path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER) WITHOUT ROWID");
  const get = db.prepare("SELECT value, expires_at FROM kv WHERE key = ?").raw(true);
  const set = db.prepare(
    "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
  );
  const api: Api<Uint8Array> = {
    async get(k) {
      const row = get.get(k) as [Uint8Array, number | null] | undefined;
      return row && (row[1] === null || row[1] > Date.now()) ? row[0] : undefined;
    },
    async set(k, v) {
      set.run(k, v, null);
    },
  };
  return {
    api,
    async close() {
      db.close();
      f.remove();
    },
  };
}

function cases(op: "get" | "set"): BenchCase[] {
  // Consecutive writes of a key alternate between two values: SQLite skips writing a page when a
  // row is overwritten with identical bytes, which would measure a no-op instead of a write.
  const bytes = [bytesOf(100, "a"), bytesOf(100, "b")];
  const strings = [textOf(100, "a"), textOf(100, "b")];
  const pick =
    <V>(values: V[]) =>
    (i: number) =>
      values[Math.floor(i / KEYS) % 2]!;
  const make = <V>(
    name: string,
    role: BenchCase["role"],
    value: (i: number) => V,
    open: () => Opened<V>,
    judge?: BenchCase["judge"],
  ): BenchCase => ({
    name,
    role,
    judge,
    variant: `${op} 100 B`,
    async create() {
      const { api, close } = open();
      // One at a time: hundreds of concurrent writes make @keyv/sqlite's pre-load crawl.
      for (let i = 0; i < KEYS; i++) await api.set(key(i), value(i));
      return {
        op: op === "get" ? (i: number) => api.get(key(i)) : (i: number) => api.set(key(i), value(i)),
        close,
      };
    },
  });
  const ours =
    <V>(wrap: (store: KvStore) => Api<V>) =>
    () => {
      const f = tempFile();
      const store = createSqliteStore({ path: f.path });
      return {
        api: wrap(store),
        async close() {
          await store.close();
          f.remove();
        },
      };
    };
  return [
    make(
      "createSqliteStore, bytes",
      "ours",
      pick(bytes),
      ours((s) => s),
      ["limit"],
    ),
    make(
      "createSqliteStore + text codec, string",
      "ours",
      pick(strings),
      ours((s) => withCodec(s, text)),
      ["peer"],
    ),
    make("better-sqlite3, same pragmas, bytes", "limit", pick(bytes), raw),
    make("Keyv + @keyv/sqlite (same pragmas), string", "peer", pick(strings), () => {
      const f = tempFile();
      const adapter = new KeyvSqlite(`sqlite://${f.path}`);
      // Its defaults (rollback journal, synchronous FULL) fsync every write: give it the same
      // pragmas as the others so the comparison is about the code, not the disk.
      const ready = adapter
        .query("PRAGMA journal_mode = WAL")
        .then(() => adapter.query("PRAGMA synchronous = NORMAL"));
      const keyv = new Keyv<string>({ store: adapter });
      const api: Api<string> = {
        async get(k) {
          await ready;
          return keyv.get(k);
        },
        async set(k, v) {
          await ready;
          return keyv.set(k, v);
        },
      };
      return {
        api,
        async close() {
          await keyv.disconnect();
          f.remove();
        },
      };
    }),
  ];
}

export default {
  title: "SQLite: createSqliteStore vs raw better-sqlite3 (the limit) and Keyv + @keyv/sqlite (the peer)",
  inFlight: [1, 64],
  ops: 200_000,
  targets: { limit: 0.8, peer: 5 },
  notes: [
    "Each case gets a fresh database file in the OS temp directory, pre-loaded with 10,000 keys of 100 bytes; gets and sets cycle over them, and consecutive writes of a key alternate between two values (SQLite skips the page write when a row is overwritten with identical bytes, which would measure a no-op).",
    "The limit is better-sqlite3 with the same pragmas (WAL, `synchronous = NORMAL`) on a `key`/`value`/`expires_at` table, one prepared statement per operation and the deadline checked in JS, behind `async` functions; our store with raw bytes is judged against it. Ours adds key validation, versions (`epoch.gen`) and the deadline filter in SQL where it applies.",
    "Keyv + @keyv/sqlite runs on the asynchronous `sqlite3` binding and is given what its users store, a string (the same 100 bytes), and judged against our store with the text codec storing that string. It is given the same two pragmas: its defaults, a rollback journal with `synchronous = FULL`, fsync every write.",
  ].join(" "),
  cases: [...cases("get"), ...cases("set")],
} satisfies BenchSuite;
