import { createMemoryStore } from "@kvsession/kv";
import { runStoreConformance } from "../src/index.js";

runStoreConformance("MemoryStore", () => createMemoryStore());
runStoreConformance("MemoryStore (bounded)", () =>
  createMemoryStore({ maxEntries: 100_000, maxBytes: 256 * 1024 * 1024 }),
);
// The neighbour is a sibling view of the same store: closing it closes the store under test too,
// which the suite's cleanup allows for.
let shared = createMemoryStore();
runStoreConformance(
  "MemoryStore prefix view",
  () => {
    shared = createMemoryStore();
    return shared.withPrefix("view:");
  },
  { neighbour: () => shared.withPrefix("weiv:") },
);
