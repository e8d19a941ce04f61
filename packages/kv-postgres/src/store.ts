import { constants } from "node:buffer";
import { KvArgumentError, type KvStore, type KvVersion } from "@kvsession/kv";
import {
  asBuffer,
  assertKeysetCursor,
  type BatchKind,
  createCoalescer,
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
import pg from "pg";
import { toKvError } from "./errors.js";
import { migrate, tableNames } from "./schema.js";
import { statements } from "./statements.js";
import { kvTypes } from "./types.js";

/** Where the store connects: a connection string (plus pool options), or a pool you already own. */
export type PostgresConnection =
  | ({ connectionString: string } & Omit<pg.PoolConfig, "connectionString">)
  | { pool: pg.Pool };

export interface PostgresStoreOptions extends DriverSweepOptions {
  /** Table holding this store's keys. Default "kv". Several stores may share a database with different tables. */
  table?: string;
  /** Schema of the table (created if missing). Default: the connection's search_path. */
  schema?: string;
  /**
   * Largest value accepted, refused before anything is sent. Default 64 MiB; at most
   * `MAX_VALUE_BYTES`, because `bytea` comes back as hex text and a larger
   * value would not fit one JS string.
   */
  maxValueBytes?: number;
}

/**
 * The largest `maxValueBytes`: `bytea` arrives as `\x` and two hex digits per byte, in one JS
 * string, and pg decodes the row inside its socket handler, where a string over the engine's limit
 * would be an uncaught exception. Derived from that limit rather than written down, since it
 * differs between builds.
 */
export const MAX_VALUE_BYTES = Math.floor((constants.MAX_STRING_LENGTH - 2) / 2);
const DEFAULT_MAX_VALUE = Math.min(64 * 1024 * 1024, MAX_VALUE_BYTES);

/**
 * A kvsession store on a PostgreSQL table: `bytea` values, an indexed epoch-ms
 * deadline with a bounded background sweep, versions from a sequence (never
 * reused), atomic `setIfAbsent` and compare-and-set in one statement each, and
 * keyset listing in code-point order. Creates or migrates its table on open.
 *
 * @example
 * import { createPostgresStore } from "@kvsession/kv-postgres";
 * const store = await createPostgresStore(
 *   { connectionString: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test" },
 *   { table: "sessions" },
 * );
 * await store.set("k", new TextEncoder().encode("v"), { ttl: 60_000 });
 * await store.close();
 */
export async function createPostgresStore(
  connection: PostgresConnection,
  options: PostgresStoreOptions = {},
): Promise<KvStore> {
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE;
  if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > MAX_VALUE_BYTES)
    throw new KvArgumentError(
      `maxValueBytes must be an integer from 1 to ${MAX_VALUE_BYTES}: a larger bytea would come back as hex text longer than a JS string can be`,
    );
  const names = tableNames(options.table ?? "kv", options.schema);

  const owned = !("pool" in connection);
  const pool = owned
    ? new pg.Pool({ connectionTimeoutMillis: 5000, query_timeout: 30_000, ...(connection as pg.PoolConfig) })
    : (connection as { pool: pg.Pool }).pool;
  // An idle client losing its socket (server restart) is reported on the pool; unheard, it would kill the process.
  // The pool already drops that client, and the next query reconnects.
  if (owned) pool.on("error", () => {});

  try {
    await migrate(pool, names, options.schema);
  } catch (error) {
    if (owned) await pool.end().catch(() => {});
    throw toKvError(error, `opening table ${names.id}`);
  }

  const driver = postgresDriver(pool, names, { ...options, maxValueBytes }, owned);
  return createStore(driver);
}

function postgresDriver(
  pool: pg.Pool,
  names: ReturnType<typeof tableNames>,
  options: PostgresStoreOptions & { maxValueBytes: number },
  owned: boolean,
): KvDriver {
  const st = statements(names);
  const types = kvTypes;

  const batches = createCoalescer();

  // biome-ignore lint/suspicious/noExplicitAny: rows are shaped by each statement
  async function q<R extends Record<string, any>>(
    op: string,
    stmt: { name: string; text: string },
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    // Whatever is queued was issued before this: it goes out first.
    batches.flush();
    try {
      return await pool.query<R>({ name: stmt.name, text: stmt.text, values, types });
    } catch (error) {
      throw toKvError(error, op);
    }
  }

  /** The version a conditional write created (its statement returns it), or false when it wrote nothing. */
  const newVersion = (res: pg.QueryResult<{ version: string }>): string | false =>
    res.rows[0]?.version ?? false;

  // The value column may have been retyped underneath (to text: a string comes back).
  const where = `PostgreSQL table ${names.id}`;
  type Row = { value: unknown; expires_at: number | null };
  type VersionedRow = Row & { version: string };
  const entry = (key: string, row: Row): DriverEntry => {
    const value = storedBytes(row.value, where, key);
    return row.expires_at === null ? { value } : { value, expiresAt: row.expires_at };
  };
  const entryOrAbsent = (key: string, row: Row | undefined) =>
    row === undefined || row.value === null ? undefined : entry(key, row);
  const versioned = (key: string, row: (Row & { version: string | null }) | undefined) =>
    row === undefined || row.value === null
      ? { entry: undefined, version: null }
      : { entry: entry(key, row), version: row.version as string };

  /**
   * Gets, versioned gets and sets issued in one turn while another call is in flight share one
   * statement per 16 keys (`unnest($1)`) instead of one each: a pool spends its time per statement
   * (round trip, protocol, executor start), and a multi-row upsert also shares one commit.
   */
  const getKind: BatchKind<string, DriverEntry | undefined> = {
    one: (key) => q<Row>("get", st.get, [key]).then((res) => entryOrAbsent(key, res.rows[0])),
    many: (keys) =>
      q<Row>("getMany", st.getMany, [keys]).then((res) => res.rows.map((r, i) => entryOrAbsent(keys[i]!, r))),
  };
  /** Many upserts in one statement, which cannot touch a row twice: the last write of a key wins, as if sequential. */
  function writeMany(writes: DriverWrite[]): Promise<unknown> {
    const last = new Map<string, DriverWrite>();
    for (const w of writes) {
      last.delete(w.key);
      last.set(w.key, w);
    }
    const ws = [...last.values()];
    return q("setMany", st.setMany, [
      ws.map((w) => w.key),
      ws.map((w) => asBuffer(w.value)),
      ws.map((w) => w.expiresAt ?? null),
    ]);
  }
  const done = () => undefined;
  const setKind: BatchKind<DriverWrite, void> = {
    one: (w) => q("set", st.set, [w.key, asBuffer(w.value), w.expiresAt ?? null]).then(done),
    many: (ws) => writeMany(ws).then(() => new Array<undefined>(ws.length)),
  };
  const getVersionedKind: BatchKind<string, { entry: DriverEntry | undefined; version: KvVersion }> = {
    one: (key) =>
      q<VersionedRow>("getVersioned", st.getVersioned, [key]).then((res) => versioned(key, res.rows[0])),
    many: (keys) =>
      q<VersionedRow>("getVersioned", st.getVersionedMany, [keys]).then((res) =>
        res.rows.map((r, i) => versioned(keys[i]!, r)),
      ),
  };

  // Defaults: 500 rows per sweep statement, every 10 s.
  const sweeper = startDriverSweeper(
    options,
    { intervalMs: 10_000, batch: 500 },
    async (batch, now) => (await q("sweep", st.sweep, [now, batch])).rowCount ?? 0,
  );

  return {
    name: "postgres",
    capabilities: {
      ttl: "emulated",
      ttlGranularityMs: 1,
      setIfAbsent: true,
      compareAndSet: true,
      orderedListing: true,
      maxValueBytes: options.maxValueBytes,
    },

    get(key) {
      return batches.add(getKind, key);
    },

    async has(key) {
      return ((await q("has", st.has, [key, Date.now()])).rowCount ?? 0) > 0;
    },

    set(key, value, expiresAt) {
      return batches.add(setKind, { key, value, expiresAt });
    },

    async delete(key) {
      const now = Date.now();
      const res = await q<{ expires_at: number | null }>("delete", st.delete, [key]);
      const row = res.rows[0];
      return row !== undefined && (row.expires_at === null || row.expires_at > now);
    },

    getMany(keys) {
      return getKind.many(keys);
    },

    async setMany(writes: DriverWrite[]) {
      await writeMany(writes);
    },

    async deleteMany(keys) {
      const now = Date.now();
      const res = await q<{ key: string; expires_at: number | null }>("deleteMany", st.deleteMany, [keys]);
      const existed = new Set<string>();
      for (const row of res.rows) if (row.expires_at === null || row.expires_at > now) existed.add(row.key);
      // A key listed twice existed only for its first deletion.
      return keys.map((k) => existed.delete(k));
    },

    async list({ prefix, cursor, limit, values }): Promise<DriverListPage> {
      assertKeysetCursor(cursor);
      const upper = prefix === "" ? undefined : prefixUpperBound(prefix);
      const params: unknown[] = [prefix, Date.now()];
      if (upper !== undefined) params.push(upper);
      if (cursor !== undefined) params.push(cursor);
      params.push(limit);
      const res = await q<{ key: string; value?: unknown; expires_at: number | null }>(
        "list",
        st.list(values, upper !== undefined, cursor !== undefined),
        params,
      );
      const items = res.rows.map((r) => ({
        key: r.key,
        value: values ? storedBytes(r.value, where, r.key) : undefined,
        expiresAt: r.expires_at ?? undefined,
      }));
      const next = items.length === limit ? items[items.length - 1]?.key : undefined;
      return { items, cursor: next };
    },

    async clear(prefix) {
      if (prefix === "") {
        await q("clear", st.clearAll, []);
        return;
      }
      const upper = prefixUpperBound(prefix);
      if (upper === undefined) await q("clear", st.clearPrefixOpen, [prefix]);
      else await q("clear", st.clearPrefix, [prefix, upper]);
    },

    async setIfAbsent(key, value, expiresAt) {
      const res = await q("setIfAbsent", st.setIfAbsent, [
        key,
        asBuffer(value),
        expiresAt ?? null,
        Date.now(),
      ]);
      return (res.rowCount ?? 0) > 0;
    },

    getVersioned(key) {
      return batches.add(getVersionedKind, key);
    },

    async compareAndSet(key, expected, value, expiresAt) {
      const now = Date.now();
      if (expected === null) {
        const res = await q<{ version: string }>("compareAndSet", st.setIfAbsent, [
          key,
          asBuffer(value),
          expiresAt ?? null,
          now,
        ]);
        return newVersion(res);
      }
      // Not one of ours (versions are decimal bigints): it can match nothing.
      if (!/^[0-9]{1,19}$/.test(expected) || BigInt(expected) > 9223372036854775807n) return false;
      const res = await q<{ version: string }>("compareAndSet", st.compareAndSet, [
        key,
        asBuffer(value),
        expiresAt ?? null,
        expected,
        now,
      ]);
      return newVersion(res);
    },

    async close() {
      await sweeper?.stop();
      if (owned) await pool.end();
    },
  };
}
