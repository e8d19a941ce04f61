import { requireService, runStoreConformance } from "@kvsession/kv-test-suite";
import { afterAll } from "vitest";
import { createPostgresStore } from "../src/index.js";
import { DATABASE_URL, dropTable, probe, uniqueTable } from "./helpers.js";

const table = uniqueTable("conf");

if (await requireService(`PostgreSQL at ${DATABASE_URL}`, () => probe())) {
  afterAll(() => dropTable(table));
  runStoreConformance("kv-postgres", () =>
    createPostgresStore({ connectionString: DATABASE_URL, max: 4 }, { table, sweepIntervalMs: 200 }),
  );
}
