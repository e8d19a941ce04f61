import { join } from "node:path";
import { runStoreConformance } from "@kvsession/kv-test-suite";
import { createSqliteStore } from "../src/index.js";
import { tempDir } from "./helpers.js";

const dir = tempDir("conf");
let n = 0;

let path = "";

// A fresh file per test: nothing left over from one test can make another pass. The neighbour is
// another table of the same file.
runStoreConformance(
  "kv-sqlite",
  () => {
    path = join(dir, `t${n++}.db`);
    return createSqliteStore({ path, sweepIntervalMs: 200 });
  },
  { neighbour: () => createSqliteStore({ path, table: "neighbour", sweepIntervalMs: false }) },
);

// Several tables in one file: the suite's clear() must never touch the neighbour.
runStoreConformance(
  "kv-sqlite (second table in a shared file)",
  () => createSqliteStore({ path: join(dir, "shared.db"), table: `kv_${n++ % 2}`, sweepIntervalMs: 200 }),
  {
    neighbour: () =>
      createSqliteStore({ path: join(dir, "shared.db"), table: "kv_n", sweepIntervalMs: false }),
  },
);
