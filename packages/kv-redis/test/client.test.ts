import { randomBytes } from "node:crypto";
import { KvClosedError } from "@kvsession/kv";
import { requireService } from "@kvsession/kv-test-suite";
import { pingRedis as ping } from "@kvsession/test-helpers";
import { createClient } from "redis";
import { describe, expect, it } from "vitest";
import { createRedisStore } from "../src/index.js";
import { escapeGlob } from "../src/keys.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const enc = (s: string) => new TextEncoder().encode(s);

describe("escapeGlob", () => {
  it("escapes every SCAN MATCH special character and nothing else", () => {
    expect(escapeGlob("a*b?c[d]e\\f^-g")).toBe("a\\*b\\?c\\[d\\]e\\\\f^-g");
  });
});

if (await requireService(`Redis at ${url}`, () => ping(url))) {
  describe("kv-redis with a client of the caller's own", () => {
    it("uses it, stores raw bytes under the namespace, and leaves it open on close", async () => {
      const client = createClient({ url, disableOfflineQueue: true });
      client.on("error", () => {});
      await client.connect();
      const namespace = `kvclient:${randomBytes(4).toString("hex")}:`;
      const store = createRedisStore({ client, namespace });
      try {
        await store.set("k", enc("raw bytes"), { ttl: 60_000 });
        // What another program sees: the bytes as given, no envelope, native expiry.
        expect(await client.get(`${namespace}k`)).toBe("raw bytes");
        const pttl = await client.pTTL(`${namespace}k`);
        expect(pttl).toBeGreaterThan(0);
        expect(pttl).toBeLessThanOrEqual(60_000);
        // A key outside the namespace, sharing its text, survives clear().
        await client.set(`${namespace.slice(0, -1)}x`, "outside");
        await store.clear();
        expect(await client.exists(`${namespace}k`)).toBe(0);
        expect(await client.get(`${namespace.slice(0, -1)}x`)).toBe("outside");
        await client.del(`${namespace.slice(0, -1)}x`);
      } finally {
        await store.close();
      }
      await expect(store.get("k")).rejects.toBeInstanceOf(KvClosedError);
      expect(client.isReady).toBe(true);
      expect(await client.ping()).toBe("PONG");
      client.destroy();
    });
  });
}
