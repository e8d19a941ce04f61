import { describe, expect, it } from "vitest";
import { createMemoryStore } from "../src/memory.js";
import { createSlabs, SLAB_BYTES, SPARE_SLABS } from "../src/slabs.js";

/** A value whose every byte says which key and which write it came from. */
const stamped = (key: number, gen: number, size: number) =>
  new Uint8Array(size).fill((key * 31 + gen * 7) & 0xff);

describe("slabs", () => {
  it("copies, so the caller's buffer can change without touching what was put", () => {
    const slabs = createSlabs();
    const src = new Uint8Array([1, 2, 3]);
    const at = slabs.put(src);
    src.fill(9);
    expect([...slabs.current().bytes.subarray(at, at + 3)]).toEqual([1, 2, 3]);
    expect(slabs.put(src)).toBe(at + 3); // packed: the next value follows
  });

  it("drops a slab once its last value dies, and reports the dead bytes in between", () => {
    const slabs = createSlabs();
    const held: Array<{ slab: ReturnType<typeof slabs.current>; n: number }> = [];
    // Three full slabs of 1 KiB values, and one value in a fourth (the current one).
    for (let i = 0; i < 3 * 64 + 1; i++) {
      slabs.put(new Uint8Array(1024));
      held.push({ slab: slabs.current(), n: 1024 });
    }
    expect(slabs.garbage()).toBe(0);
    for (const { slab, n } of held.slice(0, 32)) slabs.release(slab, n);
    expect(slabs.garbage()).toBe(32 * 1024); // half of the first slab is dead, and still held
    for (const { slab, n } of held.slice(32, 64)) slabs.release(slab, n);
    expect(slabs.garbage()).toBe(0); // the first slab is empty: dropped
  });

  it("reuses an emptied slab for the next one (at most SPARE_SLABS kept), and never hands out live bytes", () => {
    const slabs = createSlabs();
    // Four full slabs; empty the first three completely.
    const firsts: Array<ReturnType<typeof slabs.current>> = [];
    for (let s = 0; s < 4; s++) {
      slabs.put(new Uint8Array(1024));
      firsts.push(slabs.current());
      for (let i = 1; i < 64; i++) slabs.put(new Uint8Array(1024));
    }
    for (const slab of firsts.slice(0, 3)) slabs.release(slab, 64 * 1024);
    expect(slabs.garbage()).toBe(0);
    // The next two slabs are spares (the last two emptied), the one after is new.
    const next: Array<ReturnType<typeof slabs.current>> = [];
    for (let s = 0; s < 3; s++) {
      slabs.put(new Uint8Array(1024).fill(0xaa));
      next.push(slabs.current());
      for (let i = 1; i < 64; i++) slabs.put(new Uint8Array(1024).fill(0xaa));
    }
    expect(SPARE_SLABS).toBe(2);
    expect(next.filter((s) => firsts.includes(s))).toHaveLength(SPARE_SLABS);
    expect(firsts.includes(next[2]!)).toBe(false);
    // The fourth slab, still live, was never handed out again, and what was put there is intact.
    expect(next.includes(firsts[3]!)).toBe(false);
    expect(next[0]!.bytes.every((b) => b === 0xaa)).toBe(true);
  });

  it("asks for compaction only when dead bytes dominate", () => {
    const slabs = createSlabs();
    const items: Array<ReturnType<typeof slabs.current>> = [];
    for (let i = 0; i < 64 * 16; i++) {
      slabs.put(new Uint8Array(1024));
      items.push(slabs.current());
    }
    expect(slabs.due()).toBe(false);
    // Kill 3 of every 4 values: every slab stays held, three quarters of it dead.
    items.forEach((slab, i) => {
      if (i % 4 !== 0) slabs.release(slab, 1024);
    });
    expect(slabs.garbage()).toBeGreaterThan(2 * 4 * SLAB_BYTES);
    expect(slabs.due()).toBe(true);
    expect(slabs.sparse(items[0]!)).toBe(true);
  });
});

describe("memory store on slabs", () => {
  it("keeps every value intact through many overwrites and compactions", async () => {
    const store = createMemoryStore();
    const KEYS = 2000;
    const gen = new Array<number>(KEYS).fill(0);
    for (let k = 0; k < KEYS; k++) await store.set(`k${k}`, stamped(k, 0, 100 + (k % 50)));
    // Enough overwrites to cross the compaction threshold several times.
    let seed = 1;
    for (let i = 0; i < 40_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const k = seed % KEYS;
      gen[k]!++;
      if (i % 97 === 0) {
        await store.delete(`k${k}`);
        gen[k] = -1;
      } else {
        if (gen[k]! <= 0) gen[k] = 1;
        await store.set(`k${k}`, stamped(k, gen[k]!, 100 + (k % 50)));
      }
    }
    for (let k = 0; k < KEYS; k++) {
      const got = await store.get(`k${k}`);
      if (gen[k] === -1) expect(got).toBeUndefined();
      else expect(got).toEqual(stamped(k, gen[k]!, 100 + (k % 50)));
    }
  });

  it("a value read back is a copy: changing it changes nothing stored", async () => {
    const store = createMemoryStore();
    await store.set("a", new Uint8Array([1, 2, 3]));
    await store.set("b", new Uint8Array([4, 5, 6]));
    const a = (await store.get("a"))!;
    a.fill(0);
    expect([...(await store.get("a"))!]).toEqual([1, 2, 3]);
    expect([...(await store.get("b"))!]).toEqual([4, 5, 6]);
  });
});
