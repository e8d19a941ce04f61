import { createMemoryStore } from "@kvsession/kv";
import { runStoreConformance } from "../src/index.js";

runStoreConformance("MemoryStore", () => createMemoryStore());
runStoreConformance("MemoryStore (bounded)", () =>
  createMemoryStore({ maxEntries: 100_000, maxBytes: 256 * 1024 * 1024 }),
);
runStoreConformance("MemoryStore prefix view", () => createMemoryStore().withPrefix("view:"));
