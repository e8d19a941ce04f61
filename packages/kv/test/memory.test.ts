import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createMemoryStore, KvArgumentError } from "../src/index.js";

const v = (n: number) => new Uint8Array(n).fill(1);

describe("MemoryStore bounds and reclamation", () => {
  it("evicts the least recently used entry beyond maxEntries", async () => {
    const s = createMemoryStore({ maxEntries: 3 });
    await s.set("a", v(1));
    await s.set("b", v(1));
    await s.set("c", v(1));
    await s.get("a"); // a is now the most recent
    await s.set("d", v(1));
    expect(await s.getMany(["a", "b", "c", "d"]).then((r) => r.map((x) => x !== undefined))).toEqual([
      true,
      false,
      true,
      true,
    ]);
  });

  it("evicts by bytes, counting keys and values", async () => {
    const s = createMemoryStore({ maxBytes: 4096 });
    for (let i = 0; i < 100; i++) await s.set(`k${i}`, v(500));
    const live = (await s.getMany(Array.from({ length: 100 }, (_, i) => `k${i}`))).filter(Boolean).length;
    expect(live).toBeGreaterThanOrEqual(6); // 4096 / (500 + 4 + 64) = 7.2
    expect(live * 500).toBeLessThanOrEqual(4096);
    expect(await s.has("k99")).toBe(true);
  });

  it("reclaims expired entries that are never read again", async () => {
    vi.useFakeTimers();
    try {
      const s = createMemoryStore({ sweepIntervalMs: 100, maxEntries: 1_000_000 });
      for (let i = 0; i < 1000; i++) await s.set(`k${i}`, v(10), { ttl: 50 });
      await s.set("keep", v(10));
      vi.advanceTimersByTime(200);
      // The listing scans the whole map: it would see expired slots if they were still held.
      const keys: string[] = [];
      for await (const k of s.keys()) keys.push(k);
      expect(keys).toEqual(["keep"]);
      await s.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps its expiry heap bounded under overwrites", async () => {
    vi.useFakeTimers();
    try {
      const s = createMemoryStore({ sweepIntervalMs: 10 });
      for (let i = 0; i < 20_000; i++) await s.set("same", v(1), { ttl: 60_000 });
      vi.advanceTimersByTime(20);
      expect(await s.has("same")).toBe(true);
      await s.close();
    } finally {
      vi.useRealTimers();
    }
  });

  describe("expiry when a key's deadline changes (one heap item per entry, re-armed by the sweep)", () => {
    /**
     * Whether the entry "k" was reclaimed without being read: with maxEntries = 2 holding "keep" and
     * "k", one more permanent write evicts the least recently used entry, "keep", unless the sweep
     * has already dropped "k"'s expired entry.
     */
    async function reclaimedBySweep(s: ReturnType<typeof createMemoryStore>): Promise<boolean> {
      await s.set("other", v(1));
      return s.has("keep");
    }
    /** A store of at most 2 entries holding "keep", the entry the probe watches. */
    const open = async () => {
      const s = createMemoryStore({ sweepIntervalMs: 10, maxEntries: 2 });
      await s.set("keep", v(1));
      return s;
    };
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it("keeps an entry whose deadline moved later past its first one, then reclaims it at the last", async () => {
      const s = await open();
      await s.set("k", v(1), { ttl: 50 });
      vi.advanceTimersByTime(30);
      await s.set("k", v(2), { ttl: 100 }); // now due at 130
      vi.advanceTimersByTime(60); // t = 90: the first deadline has passed, the sweep re-arms
      expect(await s.get("k")).toEqual(v(2));
      await s.set("k", v(3), { ttl: 100 }); // due at 190
      vi.advanceTimersByTime(120); // t = 210
      expect(await reclaimedBySweep(s)).toBe(true);
      await s.close();
    });

    it("reclaims an entry whose deadline moved earlier at the earlier one", async () => {
      const s = await open();
      await s.set("k", v(1), { ttl: 60_000 });
      await s.set("k", v(2), { ttl: 50 });
      vi.advanceTimersByTime(100);
      expect(await reclaimedBySweep(s)).toBe(true);
      await s.close();
    });

    it("never reclaims an entry rewritten without a TTL, and arms it afresh when a TTL comes back", async () => {
      const s = await open();
      await s.set("k", v(1), { ttl: 50 });
      await s.set("k", v(2));
      vi.advanceTimersByTime(200);
      expect(await s.get("k")).toEqual(v(2));
      await s.set("k", v(3), { ttl: 50 });
      vi.advanceTimersByTime(100);
      expect(await reclaimedBySweep(s)).toBe(true);
      await s.close();
    });

    it("the check itself: an entry that was not reclaimed costs 'keep' its place", async () => {
      const s = await open();
      await s.set("k", v(1), { ttl: 60_000 });
      vi.advanceTimersByTime(100);
      expect(await reclaimedBySweep(s)).toBe(false);
      await s.close();
    });
  });

  it("refuses nonsensical options", () => {
    expect(() => createMemoryStore({ maxEntries: 0 })).toThrow(KvArgumentError);
    expect(() => createMemoryStore({ maxBytes: -1 })).toThrow(KvArgumentError);
  });
});

describe("MemoryStore listing cursors", () => {
  it("refuses a cursor that could not be a key (NUL, lone surrogate) with KvArgumentError", async () => {
    const s = createMemoryStore();
    await s.setMany(["a", "b", "c"].map((key) => ({ key, value: v(1) })));
    for (const cursor of ["a\u0000b", "\u0000", "\ud800", "x\udc00"])
      await expect(s.listKeys({ cursor }), JSON.stringify(cursor)).rejects.toBeInstanceOf(KvArgumentError);
    // Any other string is a position: the listing resumes after it.
    expect((await s.listKeys({ cursor: "a" })).keys).toEqual(["b", "c"]);
  });
});
