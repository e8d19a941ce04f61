import { createMemoryStore, KvArgumentError, type KvStore } from "@kvsession/kv";
import { createStore, type KvDriver } from "@kvsession/kv/driver";
import { describe, expect, it } from "vitest";
import { checkForgedCursors } from "../src/index.js";

/**
 * A driver with the flaw the cursor check exists for: the keys still to return travel in the
 * cursor, are trusted, and lose their namespace by length. `shape` decides how far a malformed
 * cursor is checked before use.
 */
function pendingKeysDriver(
  map: Map<string, Uint8Array>,
  ns: string,
  shape: "checked" | "unchecked",
): KvDriver {
  return {
    name: "pending-keys",
    capabilities: { ttl: "emulated" },
    get: (k) => {
      const v = map.get(ns + k);
      return v && { value: new Uint8Array(v) };
    },
    set: (k, v) => {
      map.set(ns + k, new Uint8Array(v));
    },
    delete: (k) => map.delete(ns + k),
    list({ prefix, cursor, limit }) {
      let pending: string[];
      if (cursor === undefined) pending = [...map.keys()].filter((k) => k.startsWith(ns + prefix)).sort();
      else {
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
        } catch {
          throw new KvArgumentError("not a cursor of this store");
        }
        if (!Array.isArray(parsed) || (shape === "checked" && !parsed.every((k) => typeof k === "string")))
          throw new KvArgumentError("not a cursor of this store");
        pending = parsed as string[];
      }
      const page = pending.slice(0, limit);
      const rest = pending.slice(limit);
      return {
        items: page.map((raw) => ({ key: raw.slice(ns.length), value: map.get(raw) })),
        cursor: rest.length > 0 ? Buffer.from(JSON.stringify(rest)).toString("base64url") : undefined,
      };
    },
  };
}

describe("checkForgedCursors", () => {
  it("passes a store whose cursors carry only a position, with and without a neighbour", async () => {
    await checkForgedCursors(createMemoryStore());
    await checkForgedCursors(createMemoryStore().withPrefix("view:"), createMemoryStore());
  });

  it("catches a store that lists another store's keys from a cursor replayed on it", async () => {
    const map = new Map<string, Uint8Array>();
    const mine = createStore(pendingKeysDriver(map, "ns1:", "checked"));
    const theirs = createStore(pendingKeysDriver(map, "ns2:", "checked"));
    await expect(checkForgedCursors(mine, theirs)).rejects.toThrow(/NEIGHBOUR|zz-neighbour/);
  });

  it("catches a store that fails on a malformed cursor with something other than a KvError", async () => {
    const store = createStore(pendingKeysDriver(new Map(), "ns:", "unchecked"));
    await expect(checkForgedCursors(store)).rejects.toThrow(/must fail with a KvError/);
  });

  it("catches a store that resumes a cursor outside the prefix it was asked for", async () => {
    const inner = createMemoryStore();
    // Not built on createStore, which would drop keys outside the prefix: this one trusts its cursor.
    const careless: KvStore = {
      ...inner,
      listKeys: (o) => inner.listKeys({ ...o, prefix: o?.cursor === undefined ? o?.prefix : "" }),
      listEntries: (o) => inner.listEntries({ ...o, prefix: o?.cursor === undefined ? o?.prefix : "" }),
      withPrefix: (p) => inner.withPrefix(p),
    };
    await expect(checkForgedCursors(careless)).rejects.toThrow(/listed a:/);
  });
});
