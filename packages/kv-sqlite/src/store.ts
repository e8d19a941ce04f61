import { KvArgumentError, type KvStore, type KvVersion } from "@kvsession/kv";
import {
  assertKeysetCursor,
  createStore,
  type DriverEntry,
  type DriverListPage,
  type DriverSweepOptions,
  type DriverWrite,
  type KvDriver,
  prefixUpperBound,
  startDriverSweeper,
  storedBytes,
} from "@kvsession/kv/driver";
import Database from "better-sqlite3";
import { toKvError } from "./errors.js";
import { writeQueue } from "./group-commit.js";
import { checkTableName, migrate } from "./schema.js";
import { statements } from "./statements.js";

/** A row's version parts, as the statements return them. */
type Version = { epoch: number; gen: number };

export interface SqliteStoreOptions extends DriverSweepOptions {
  /** Database file to open (created if missing; its directory must exist). Give this or `database`. */
  path?: string;
  /**
   * A better-sqlite3 Database you own. Its pragmas are left as you set them and `close()` leaves it
   * open. Give this or `path`.
   */
  database?: Database.Database;
  /** Table holding this store's keys. Default "kv". Stores on different tables of one file never see each other. */
  table?: string;
  /**
   * `"normal"` (default): WAL with `synchronous = NORMAL` — a commit is atomic and the file is never
   * corrupted, but a power loss (not a process crash) may roll back the last commits. `"full"`: also
   * fsync the WAL on every commit, so an acknowledged write survives power loss, at several times the
   * cost per write. Applies only to a file this store opens.
   */
  durability?: "normal" | "full";
  /** How long a write waits for another connection's lock before failing with KvTimeoutError, in ms. Default 2000. */
  busyTimeoutMs?: number;
  /** Open the file read-only: reads work, every write fails with KvPermissionError. */
  readonly?: boolean;
  /** Largest value accepted, in bytes. Default 256 MiB (at most 900 MB: SQLite's row limit is 1 GB). */
  maxValueBytes?: number;
}

const DEFAULT_MAX_VALUE = 256 * 1024 * 1024;
const HARD_MAX_VALUE = 900 * 1000 * 1000;

/**
 * A kvsession store on a SQLite table through better-sqlite3: WAL mode, BLOB
 * values, an indexed epoch-ms deadline with a bounded background sweep,
 * versions that never repeat, atomic `setIfAbsent` and compare-and-set in one
 * statement each, batches in one transaction and keyset listing in code-point
 * order. Creates or migrates its table on open. Every call is synchronous
 * underneath: results come back without a round trip.
 *
 * @example
 * import { createSqliteStore } from "@kvsession/kv-sqlite";
 * const store = createSqliteStore({ path: "sessions.db", table: "sessions" });
 * await store.set("user:42", new TextEncoder().encode("Ada"), { ttl: 60_000 });
 * console.log(new TextDecoder().decode(await store.get("user:42"))); // "Ada"
 * await store.close();
 */
export function createSqliteStore(options: SqliteStoreOptions): KvStore {
  const table = checkTableName(options.table ?? "kv");
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE;
  if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > HARD_MAX_VALUE)
    throw new KvArgumentError(`maxValueBytes must be an integer from 1 to ${HARD_MAX_VALUE}`);
  const durability = options.durability ?? "normal";
  if (durability !== "normal" && durability !== "full")
    throw new KvArgumentError(`durability must be "normal" or "full", got ${String(durability)}`);
  const busy = options.busyTimeoutMs ?? 2000;
  if (!Number.isInteger(busy) || busy < 0) throw new KvArgumentError("busyTimeoutMs must be an integer >= 0");
  if ((options.path === undefined) === (options.database === undefined))
    throw new KvArgumentError(
      "give exactly one of `path` (a file to open) or `database` (a better-sqlite3 Database)",
    );

  const owned = options.database === undefined;
  const file = options.path ?? options.database?.name ?? "database";
  let db: Database.Database | undefined;
  try {
    db =
      options.database ?? new Database(options.path!, { readonly: options.readonly ?? false, timeout: busy });
    if (owned) {
      // The first statement reads the header: a file that is not SQLite fails here, not later.
      if (!db.readonly) db.pragma("journal_mode = WAL");
      else db.pragma("schema_version");
      db.pragma(`synchronous = ${durability === "full" ? "FULL" : "NORMAL"}`);
    }
    migrate(db, table);
    return createStore(sqliteDriver(db, table, file, { ...options, maxValueBytes }, owned));
  } catch (error) {
    if (owned) db?.close();
    throw toKvError(error, `opening table "${table}"`, file);
  }
}

function sqliteDriver(
  db: Database.Database,
  table: string,
  file: string,
  options: SqliteStoreOptions & { maxValueBytes: number },
  owned: boolean,
): KvDriver {
  const st = statements(db, table);
  const getRaw = st.get.raw(true);
  const fail = (op: string, error: unknown) => toKvError(error, op, file);
  const queue = writeQueue(db, st.set, fail);

  // A BLOB column holds whatever is put in it: TEXT another program wrote comes back as a string.
  const where = `SQLite table "${table}"`;
  const bytes = (value: unknown, key: string) => storedBytes(value, where, key);
  const entry = (key: string, value: unknown, expiresAt: number | null): DriverEntry =>
    expiresAt === null ? { value: bytes(value, key) } : { value: bytes(value, key), expiresAt };
  const live = (expiresAt: number | null, now: number) => expiresAt === null || expiresAt > now;

  // Anything that removes rows bumps the epoch in the same transaction (see statements.ts).
  const removed = (n: number) => {
    if (n > 0) st.bumpEpoch.run();
    return n;
  };
  const tx = {
    delete: db.transaction((key: string) => {
      const row = st.delete.get(key) as { expires_at: number | null } | undefined;
      if (row) removed(1);
      return row;
    }),
    deleteMany: db.transaction((keys: string[], now: number) => {
      let n = 0;
      const out = keys.map((k) => {
        const row = st.delete.get(k) as { expires_at: number | null } | undefined;
        if (!row) return false;
        n++;
        return live(row.expires_at, now);
      });
      removed(n);
      return out;
    }),
    setMany: db.transaction((writes: DriverWrite[]) => {
      for (const w of writes) st.set.run(w.key, w.value, w.expiresAt ?? null);
    }),
    getMany: db.transaction((keys: string[]) =>
      keys.map((k) => {
        const row = getRaw.get(k) as [unknown, number | null] | undefined;
        return row ? entry(k, row[0], row[1]) : undefined;
      }),
    ),
    clear: db.transaction((prefix: string) => {
      const upper = prefix === "" ? undefined : prefixUpperBound(prefix);
      const res =
        prefix === ""
          ? st.clearAll.run()
          : upper === undefined
            ? st.clearFrom.run(prefix)
            : st.clearRange.run(prefix, upper);
      removed(res.changes);
    }),
    sweep: db.transaction((now: number, batch: number) => removed(st.sweep.run(now, batch).changes)),
  };

  // Defaults: 500 rows per sweep, every 10 s; a read-only database has nothing to sweep.
  const sweeper = db.readonly
    ? undefined
    : startDriverSweeper(options, { intervalMs: 10_000, batch: 500 }, (batch, now) => {
        try {
          queue.flush();
          return tx.sweep.immediate(now, batch);
        } catch (error) {
          throw fail("sweep", error);
        }
      });

  return {
    name: "sqlite",
    capabilities: {
      ttl: "emulated",
      ttlGranularityMs: 1,
      setIfAbsent: true,
      compareAndSet: true,
      orderedListing: true,
      settlesInTurn: true,
      maxValueBytes: options.maxValueBytes,
    },

    get(key) {
      queue.flush();
      try {
        const row = getRaw.get(key) as [unknown, number | null] | undefined;
        return row === undefined ? undefined : entry(key, row[0], row[1]);
      } catch (error) {
        throw fail("get", error);
      }
    },

    has(key) {
      queue.flush();
      try {
        return st.has.get(key, Date.now()) !== undefined;
      } catch (error) {
        throw fail("has", error);
      }
    },

    set(key, value, expiresAt) {
      return queue.push(key, value, expiresAt);
    },

    delete(key) {
      queue.flush();
      const now = Date.now();
      try {
        const row = tx.delete.immediate(key);
        return row !== undefined && live(row.expires_at, now);
      } catch (error) {
        throw fail("delete", error);
      }
    },

    getMany(keys) {
      queue.flush();
      try {
        return tx.getMany(keys);
      } catch (error) {
        throw fail("getMany", error);
      }
    },

    setMany(writes) {
      queue.flush();
      try {
        tx.setMany.immediate(writes);
      } catch (error) {
        throw fail("setMany", error);
      }
    },

    deleteMany(keys) {
      queue.flush();
      try {
        return tx.deleteMany.immediate(keys, Date.now());
      } catch (error) {
        throw fail("deleteMany", error);
      }
    },

    list({ prefix, cursor, limit, values }): DriverListPage {
      assertKeysetCursor(cursor);
      queue.flush();
      const upper = prefix === "" ? undefined : prefixUpperBound(prefix);
      const params: unknown[] = [prefix, Date.now()];
      if (upper !== undefined) params.push(upper);
      if (cursor !== undefined) params.push(cursor);
      params.push(limit);
      let rows: Array<{ key: string; value?: unknown; expires_at: number | null }>;
      try {
        rows = st.list(values, upper !== undefined, cursor !== undefined).all(...params) as typeof rows;
      } catch (error) {
        throw fail("list", error);
      }
      const items = rows.map((r) => ({
        key: r.key,
        value: values ? bytes(r.value, r.key) : undefined,
        expiresAt: r.expires_at ?? undefined,
      }));
      return { items, cursor: items.length === limit ? items[items.length - 1]?.key : undefined };
    },

    clear(prefix) {
      queue.flush();
      try {
        tx.clear.immediate(prefix);
      } catch (error) {
        throw fail("clear", error);
      }
    },

    setIfAbsent(key, value, expiresAt) {
      queue.flush();
      try {
        return st.setIfAbsent.run(key, value, expiresAt ?? null, Date.now()).changes > 0;
      } catch (error) {
        throw fail("setIfAbsent", error);
      }
    },

    getVersioned(key): { entry: DriverEntry | undefined; version: KvVersion } {
      queue.flush();
      try {
        const row = st.getVersioned.get(key) as
          | { value: unknown; expires_at: number | null; epoch: number; gen: number }
          | undefined;
        return row
          ? { entry: entry(key, row.value, row.expires_at), version: `${row.epoch}.${row.gen}` }
          : { entry: undefined, version: null };
      } catch (error) {
        throw fail("getVersioned", error);
      }
    },

    compareAndSet(key, expected, value, expiresAt) {
      queue.flush();
      const now = Date.now();
      try {
        if (expected === null) {
          const row = st.createIfAbsent.get(key, value, expiresAt ?? null, now) as Version | undefined;
          return row === undefined ? false : `${row.epoch}.${row.gen}`;
        }
        // Not one of ours: it can match nothing.
        const m = /^([0-9]{1,15})\.([0-9]{1,15})$/.exec(expected);
        if (!m) return false;
        const row = st.compareAndSet.get(value, expiresAt ?? null, key, Number(m[1]), Number(m[2]), now) as
          | { gen: number }
          | undefined;
        return row === undefined ? false : `${m[1]}.${row.gen}`;
      } catch (error) {
        throw fail("compareAndSet", error);
      }
    },

    async close() {
      queue.flush();
      await sweeper?.stop();
      if (owned && db.open) db.close();
    },
  };
}
