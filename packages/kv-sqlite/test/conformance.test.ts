import { join } from "node:path";
import { runStoreConformance } from "@kvsession/kv-test-suite";
import { createSqliteStore } from "../src/index.js";
import { tempDir } from "./helpers.js";

const dir = tempDir("conf");
let n = 0;

// A fresh file per test: nothing left over from one test can make another pass.
runStoreConformance("kv-sqlite", () =>
  createSqliteStore({ path: join(dir, `t${n++}.db`), sweepIntervalMs: 200 }),
);

// Several tables in one file: the suite's clear() must never touch the neighbour.
runStoreConformance("kv-sqlite (second table in a shared file)", () =>
  createSqliteStore({ path: join(dir, "shared.db"), table: `kv_${n++ % 2}`, sweepIntervalMs: 200 }),
);
