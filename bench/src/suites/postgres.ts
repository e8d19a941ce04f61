import KeyvPostgres from "@keyv/postgres";
import { createPostgresStore } from "@kvsession/kv-postgres";
import { Keyv } from "keyv";
import pg from "pg";
import type { BenchCase, BenchSuite } from "../types.js";

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const KEYS = 10_000;
/** Same pool size for every case, so 64 in flight queue on the same 10 connections. */
const POOL = 10;
const key = (i: number) => `k${i % KEYS}`;

type Api = { get(k: string): Promise<unknown>; set(k: string, v: Uint8Array): Promise<unknown> };

/**
 * The limit: a bare pg.Pool running the statements our driver runs, on a table
 * of the same layout, with named prepared statements and pg's default parsers.
 */
async function rawPg(): Promise<{ api: Api; close(): Promise<void> }> {
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
  const api: Api = {
    get: (k) => pool.query({ name: "bench_raw_get", text: get, values: [k] }),
    set: (k, v) => pool.query({ name: "bench_raw_set", text: set, values: [k, v, null] }),
  };
  return { api, close: () => pool.end() };
}

function cases(op: "get" | "set", size: number, label: string): BenchCase[] {
  const value = Buffer.alloc(size, 7);
  const make = (
    name: string,
    role: BenchCase["role"],
    open: () => Promise<{ api: Api; close(): Promise<void> }>,
  ) => ({
    name,
    role,
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
  return [
    make("createPostgresStore", "ours", async () => {
      const store = await createPostgresStore(
        { connectionString: url, max: POOL },
        { table: "bench_pg_ours", sweepIntervalMs: false },
      );
      // TRUNCATE, as the other cases do: clear() is a DELETE, whose dead rows would weigh on later runs.
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query("TRUNCATE bench_pg_ours");
      await admin.end();
      return { api: store, close: () => store.close() };
    }),
    make("pg Pool, prepared statements", "limit", rawPg),
    make("Keyv + @keyv/postgres", "peer", async () => {
      const keyv = new Keyv<Uint8Array>({
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
  // At 1 in flight an operation is a loopback round trip and the client's work a few µs of it: the
  // verdicts there come from ours and the other case alternating 500-operation chunks in one process.
  interleaved: { inFlight: [1], chunk: 500 },
  ops: 20_000,
  targets: { limit: 0.85, peer: 1 },
  notes: [
    "The shared local PostgreSQL 15 over loopback TCP, a pool of 10 connections per case, 10,000 keys pre-loaded per case, each case on its own table.",
    'The limit is a bare `pg.Pool` running the same two statements as our driver (`SELECT value, expires_at … WHERE key = $1`; `INSERT … ON CONFLICT (key) DO UPDATE`) as named prepared statements on a table of the same layout (`text COLLATE "C"` key, `bytea` value, indexed deadline, sequence version). Every table is truncated before its case. Our store sends the calls issued in one turn of the event loop while another is in flight as one statement per 16 keys (`unnest($1)`: a multi-row read or upsert): at 1 in flight that is the same single statement as the limit; at 64 in flight it is fewer statements, which is where its lead there comes from.',
    "Keyv + @keyv/postgres stores JSON text with a base64 envelope in a `text` column and sends unnamed statements. Issue target: ≥ 0.85x the limit, and ahead of Keyv.",
  ].join(" "),
  cases: [...cases("get", 100, "100 B"), ...cases("set", 100, "100 B")],
} satisfies BenchSuite;
