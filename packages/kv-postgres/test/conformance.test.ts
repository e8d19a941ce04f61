import { requireService, runStoreConformance } from "@kvsession/kv-test-suite";
import pg from "pg";
import { afterAll } from "vitest";
import { createPostgresStore } from "../src/index.js";
import { DATABASE_URL, dropTable, probe, uniqueTable } from "./helpers.js";

if (await requireService(`PostgreSQL at ${DATABASE_URL}`, () => probe())) {
  // A store that owns its pool, on a table of this run's own.
  const table = uniqueTable("conf");
  const neighbour = uniqueTable("neighbour");
  afterAll(() => dropTable(table));
  afterAll(() => dropTable(neighbour));
  runStoreConformance(
    "kv-postgres (own pool)",
    () => createPostgresStore({ connectionString: DATABASE_URL, max: 4 }, { table, sweepIntervalMs: 200 }),
    {
      neighbour: () =>
        createPostgresStore(
          { connectionString: DATABASE_URL, max: 2 },
          { table: neighbour, sweepIntervalMs: false },
        ),
    },
  );

  // A store on a pool the app owns, in a schema the driver creates; close() must leave the pool open.
  const schema = uniqueTable("schema");
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  pool.on("error", () => {});
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.query("DELETE FROM kvsession_meta WHERE table_name = $1", [`${schema}.kv`]).catch(() => {});
    await pool.end();
  });
  runStoreConformance("kv-postgres (shared pool, own schema)", () =>
    createPostgresStore({ pool }, { schema, sweepIntervalMs: 200 }),
  );
}
