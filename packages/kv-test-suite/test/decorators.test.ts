import { randomBytes } from "node:crypto";
import { createMemoryStore, encrypted, tiered, withDefaultTtl } from "@kvsession/kv";
import { runStoreConformance } from "../src/index.js";

// Every decorator must still honour the whole contract. read-only is the one
// exception by design (it refuses writes); packages/kv/test/read-only.test.ts covers it.
runStoreConformance("withDefaultTtl", () => withDefaultTtl(createMemoryStore(), 3_600_000));
runStoreConformance("tiered (memory over memory)", () =>
  tiered(createMemoryStore({ maxEntries: 50 }), createMemoryStore()),
);
runStoreConformance("encrypted", () =>
  encrypted(createMemoryStore(), { keys: { k1: randomBytes(32), k2: randomBytes(32) }, current: "k2" }),
);
runStoreConformance("encrypted inside a prefix view of a tiered store", () =>
  encrypted(tiered(createMemoryStore(), createMemoryStore()).withPrefix("enc:"), {
    keys: { k1: randomBytes(32) },
    current: "k1",
  }),
);
