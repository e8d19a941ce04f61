import { createPostgresStore } from "@kvsession/kv-postgres";
import pg from "pg";
import { preloadMany, SCALES, scaleCases, scaleLabel, timed } from "../scale.js";
import type { BenchSuite } from "../types.js";

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** Same pool size for every case, so 64 in flight queue on the same 10 connections. */
const POOL = 10;
const tableOf = (count: number) => `bench_scale_${scaleLabel(count).split(" ")[0]!.toLowerCase()}`;

const preloads: string[] = [];

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export default {
  title: "Scale on PostgreSQL: createPostgresStore and raw pg with 10k vs 1M keys stored",
  inFlight: [1, 64],
  ops: 20_000,
  async prepare() {
    for (const count of SCALES) {
      const table = tableOf(count);
      // The driver creates its own table layout; the raw case then runs over that same table.
      const store = await createPostgresStore(
        { connectionString: url, max: 4 },
        { table, sweepIntervalMs: false },
      );
      await admin((c) => c.query(`TRUNCATE ${table}`));
      const seconds = await timed(() => preloadMany(store, count, 5000));
      await store.close();
      // Fresh statistics and visibility map: the table as it is at rest after a bulk load.
      const vacuum = await timed(() => admin((c) => c.query(`VACUUM ANALYZE ${table}`)));
      preloads.push(
        `${scaleLabel(count)} in ${seconds.toFixed(1)} s (+ ${vacuum.toFixed(1)} s VACUUM ANALYZE)`,
      );
      console.log(`pre-loaded ${preloads.at(-1)}`);
    }
  },
  async finish() {
    const tables = SCALES.map(tableOf);
    await admin(async (c) => {
      for (const t of tables) await c.query(`DROP TABLE IF EXISTS ${t}`); // its version sequence is owned by it
      await c.query("DELETE FROM kvsession_meta WHERE table_name = ANY($1)", [tables]);
    });
  },
  get notes() {
    return [
      `Per-operation cost with 10,000 vs 1,000,000 rows stored, on the shared local PostgreSQL 15 over loopback TCP, a pool of ${POOL} connections per case.`,
      "One table per size (`bench_scale_10k`, `bench_scale_1m`), created by the driver, filled once per run through the store's `setMany` (batches of 5,000, one `unnest` upsert each), then `VACUUM ANALYZE`d, and dropped at the end.",
      "Gets and sets of 100-byte values, keys visited in a scattered order over the whole table; both sizes run interleaved within each repeat.",
      `The raw rows are a bare \`pg.Pool\` running our driver's two statements as named prepared statements on the same table, so they show the engine's own scaling beside ours. Pre-loads: ${preloads.join(", ") || "none recorded"}.`,
      "The 1M / 10k column is the flatness check (reported, not asserted): 1.00x means the same per-operation cost at 1M rows as at 10k. Sets leave dead row versions behind for autovacuum, as in production.",
    ].join(" ");
  },
  cases: scaleCases([
    {
      name: "createPostgresStore",
      role: "ours",
      async open(count) {
        const store = await createPostgresStore(
          { connectionString: url, max: POOL },
          { table: tableOf(count), sweepIntervalMs: false },
        );
        return { api: store, close: () => store.close() };
      },
    },
    {
      name: "pg Pool, prepared statements",
      role: "limit",
      async open(count) {
        const t = tableOf(count);
        const pool = new pg.Pool({ connectionString: url, max: POOL });
        const get = { name: "scale_get", text: `SELECT value, expires_at FROM ${t} WHERE key = $1` };
        const set = {
          name: "scale_set",
          text: `INSERT INTO ${t} (key, value, expires_at) VALUES ($1, $2, $3)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, version = EXCLUDED.version`,
        };
        return {
          api: {
            get: (k) => pool.query({ ...get, values: [k] }),
            set: (k, v) => pool.query({ ...set, values: [k, v, null] }),
          },
          close: () => pool.end(),
        };
      },
    },
  ]),
} satisfies BenchSuite;
