import { join } from "node:path";
import { runStoreConformance } from "@kvsession/kv-test-suite";
import { createFsStore } from "../src/index.js";
import { tempDir } from "./helpers.js";

const dir = tempDir("conf");
let n = 0;

// A fresh directory per test: nothing left over from one test can make another pass.
runStoreConformance("kv-fs", () => createFsStore({ dir: join(dir, `t${n++}`), sweepIntervalMs: 200 }), {
  neighbour: () => createFsStore({ dir: join(dir, `n${n++}`), sweepIntervalMs: false }),
});

runStoreConformance(
  "kv-fs (locking off: no setIfAbsent/CAS, durability none)",
  () =>
    createFsStore({ dir: join(dir, `u${n++}`), locking: false, durability: "none", sweepIntervalMs: 200 }),
  { modelRuns: 10 },
);
