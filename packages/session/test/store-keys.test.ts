import { createMemoryStore } from "@kvsession/kv";
import { describe, expect, it } from "vitest";
import { hashId } from "../src/crypto.js";
import { createSessions } from "../src/index.js";
import { createStoreKeys } from "../src/store-keys.js";
import { SECRET } from "./helpers.js";

describe("createStoreKeys", () => {
  it("answers prefix + handle, and keeps at most max handles (the oldest go first)", () => {
    const keys = createStoreKeys("sess:", 3);
    expect(keys.of("a")).toBe("sess:a");
    expect(keys.of("a")).toBe("sess:a");
    expect(keys.size()).toBe(1);
    for (const h of ["b", "c", "d"]) expect(keys.of(h)).toBe(`sess:${h}`);
    expect(keys.size()).toBe(3);
    // "a" was dropped for "d": asking again rebuilds the same key, and the bound still holds.
    expect(keys.of("a")).toBe("sess:a");
    expect(keys.size()).toBe(3);
  });
});

describe("session records go under the namespace of the store they were given", () => {
  for (const namespace of [undefined, "app-1"]) {
    it(`namespace ${namespace ?? "(default)"} on a store that is itself a prefix view`, async () => {
      const root = createMemoryStore();
      const sessions = createSessions<{ n: number }>({
        store: root.withPrefix("tenant:"),
        secrets: [SECRET],
        namespace,
      });
      const first = sessions.open({ secure: true });
      first.set("n", 1);
      const cookie = (await first.commit()).setCookie[0]!.split(";")[0]!;
      // The next request reads and compare-and-sets through the kept key.
      const second = sessions.open({ cookieHeader: cookie, secure: true });
      second.set("n", ((await second.get("n")) ?? 0) + 1);
      expect((await second.commit()).outcome).toBe("saved");

      const id = cookie.split("=")[1]!.split(".")[0]!;
      const stored: string[] = [];
      for await (const k of root.keys()) stored.push(k);
      expect(stored).toEqual([`tenant:${namespace ?? "sess"}:${hashId(id)}`]);
      expect(await sessions.records.get(hashId(id))).toBeDefined();
      const third = sessions.open({ cookieHeader: cookie, secure: true });
      expect(await third.get("n")).toBe(2);
    });
  }
});
