import { createMemoryStore } from "@kvsession/kv";
import { Keyv } from "keyv5";
import { describe, expect, it } from "vitest";
import { toKeyv } from "../src/index.js";
import { runKeyvTestSuite, storesUnderTest } from "./keyv-suite.js";

/**
 * The README's way to get `keyv.iterator()` under Keyv 5 for a store outside Keyv 5's dialect
 * list: Keyv's own public generateIterator over the adapter's iterator, as Keyv does for the
 * dialects on its list.
 */
class KeyvWithIterator extends Keyv {
  // biome-ignore lint/suspicious/noExplicitAny: the constructor takes whatever Keyv's takes
  constructor(...args: any[]) {
    super(...args);
    this.iterator ??= this.generateIterator(this.store.iterator.bind(this.store));
  }
}

// Keyv 5 enables keyv.iterator() by the adapter's dialect; toKeyv reports the store's name.
const ON_KEYV5_DIALECT_LIST = new Set(["SQLite", "Redis", "PostgreSQL"]);

for (const s of await storesUnderTest("k5")) {
  runKeyvTestSuite(
    `@keyv/test-suite under Keyv 5: toKeyv(${s.name})${ON_KEYV5_DIALECT_LIST.has(s.name) ? "" : ", iterator enabled as the README says"}`,
    ON_KEYV5_DIALECT_LIST.has(s.name) ? Keyv : KeyvWithIterator,
    () => s.open(),
  );
}

describe("Keyv 5's iterator dialect list", () => {
  it("leaves keyv.iterator undefined over a store whose name is not on it, so the README's line is needed", () => {
    expect(new Keyv({ store: toKeyv(createMemoryStore()) }).iterator).toBeUndefined();
    expect(new Keyv({ store: toKeyv(createMemoryStore(), { dialect: "fs" }) }).iterator).toBeUndefined();
    expect(new Keyv({ store: toKeyv(createMemoryStore(), { dialect: "postgres" }) }).iterator).toBeTypeOf(
      "function",
    );
  });
});
