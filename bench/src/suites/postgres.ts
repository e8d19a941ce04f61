import KeyvPostgres from "@keyv/postgres";
import { type KvStore, text, withCodec } from "@kvsession/kv";
import { createPostgresStore } from "@kvsession/kv-postgres";
import { Keyv } from "keyv";
import pg from "pg";
import type { BenchCase, BenchSuite } from "../types.js";
import { type Api, bytesOf, textOf } from "../values.js";

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const KEYS = 10_000;
/** Same pool size for every case, so 64 in flight queue on the same 10 connections. */
const POOL = 10;
const key = (i: number) => `k${i % KEYS}`;

/**
 * The limit: a bare pg.Pool running the statements our driver runs, on a table
 * of the same layout, with named prepared statements and pg's default parsers.
 */
async function rawPg(): Promise<{ api: Api<Uint8Array>; close(): Promise<void> }> {
  const pool = new pg.Pool({ connectionString: url, max: POOL });
  await pool.query(`CREATE SEQUENCE IF NOT EXISTS bench_pg_raw_seq`);
  await pool.query(`CREATE TABLE IF NOT EXISTS bench_pg_raw (
    key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL, expires_at bigint,
    version bigint NOT NULL DEFAULT nextval('bench_pg_raw_seq'))`);
  await pool.query(
    "CREATE INDEX IF NOT EXISTS bench_pg_raw_expires_idx ON bench_pg_raw (expires_at) WHERE expires_at IS NOT NULL",
  );
  await pool.query("TRUNCATE bench_pg_raw");
  const get = "SELECT value, expires_at FROM bench_pg_raw WHERE key = $1";
  const set = `INSERT INTO bench_pg_raw (key, value, expires_at) VALUES ($1, $2, $3)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, version = EXCLUDED.version`;
  const api: Api<Uint8Array> = {
    get: (k) => pool.query({ name: "bench_raw_get", text: get, values: [k] }),
    set: (k, v) => pool.query({ name: "bench_raw_set", text: set, values: [k, v, null] }),
  };
  return { api, close: () => pool.end() };
}

function cases(op: "get" | "set", size: number, label: string): BenchCase[] {
  const make = <V>(
    name: string,
    role: BenchCase["role"],
    value: V,
    open: () => Promise<{ api: Api<V>; close(): Promise<void> }>,
    judge?: BenchCase["judge"],
  ): BenchCase => ({
    name,
    role,
    judge,
    variant: `${op} ${label}`,
    async create() {
      const { api, close } = await open();
      // Pre-load in batches of 500 in flight: every get hits a stored value.
      for (let i = 0; i < KEYS; i += 500)
        await Promise.all(Array.from({ length: 500 }, (_, j) => api.set(key(i + j), value)));
      return {
        op: op === "get" ? (i: number) => api.get(key(i)) : (i: number) => api.set(key(i), value),
        close,
      };
    },
  });
  const ours =
    <V>(table: string, wrap: (s: KvStore) => Api<V>) =>
    async () => {
      const store = await createPostgresStore(
        { connectionString: url, max: POOL },
        { table, sweepIntervalMs: false },
      );
      // TRUNCATE, as the other cases do: clear() is a DELETE, whose dead rows would weigh on later runs.
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`TRUNCATE ${table}`);
      await admin.end();
      return { api: wrap(store), close: () => store.close() };
    };
  return [
    make(
      "createPostgresStore, bytes",
      "ours",
      bytesOf(size),
      ours("bench_pg_ours", (s) => s),
      ["limit"],
    ),
    make(
      "createPostgresStore + text codec, string",
      "ours",
      textOf(size),
      ours("bench_pg_text", (s) => withCodec(s, text)),
      ["peer"],
    ),
    make("pg Pool, prepared statements, bytes", "limit", bytesOf(size), rawPg),
    make("Keyv + @keyv/postgres, string", "peer", textOf(size), async () => {
      const keyv = new Keyv<string>({
        store: new KeyvPostgres({ uri: url, table: "bench_pg_keyv", max: POOL }),
        namespace: "bench",
      });
      keyv.on("error", () => {});
      await keyv.clear(); // waits for the adapter's own CREATE TABLE
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query("TRUNCATE bench_pg_keyv");
      await admin.end();
      return { api: keyv, close: () => keyv.disconnect() };
    }),
  ];
}

export default {
  title: "PostgreSQL: createPostgresStore vs raw pg (the limit) and Keyv + @keyv/postgres (the peer)",
  inFlight: [1, 64],
  batches: [64],
  // At 1 in flight an operation is a loopback round trip and the client's work a few µs of it: the
  // verdicts there come from ours and the other case alternating 500-operation chunks in one process.
  interleaved: { inFlight: [1], chunk: 500 },
  ops: 20_000,
  targets: { limit: 0.85, peer: 1 },
  notes: [
    "The shared local PostgreSQL over loopback TCP, a pool of 10 connections per case, 10,000 keys pre-loaded per case, each case on its own table, truncated before the case.",
    'The limit is a bare `pg.Pool` running the same two statements as our driver (`SELECT value, expires_at … WHERE key = $1`; `INSERT … ON CONFLICT (key) DO UPDATE`) as named prepared statements on a table of the same layout (`text COLLATE "C"` key, `bytea` value, indexed deadline, sequence version); our store with raw bytes is judged against it. Our store sends the calls issued in one turn of the event loop while another is in flight as one statement per 16 keys (`unnest($1)`: a multi-row read or upsert): at 1 in flight that is the same single statement as the limit; at 64 in flight it is fewer statements, which is where its lead there comes from. *64* keeps 64 in flight continuously, *64, batches* awaits `Promise.all` over 64 operations, then issues the next 64.',
    "Keyv + @keyv/postgres is given what its users store, a string (the same bytes), and judged against our store with the text codec storing that string; it keeps the JSON text of `{ value, expires }` in a `text` column and sends unnamed statements. Targets: ≥ 0.85x the limit, and ahead of Keyv.",
  ].join(" "),
  cases: [...cases("get", 100, "100 B"), ...cases("set", 100, "100 B")],
} satisfies BenchSuite;
