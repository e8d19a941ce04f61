import { describe, expect, it } from "vitest";
import { asBuffer, storedBytes } from "../src/driver.js";
import { KvCorruptError } from "../src/index.js";

describe("asBuffer", () => {
  it("wraps a view's own bytes, sharing its memory (no copy)", () => {
    const backing = new Uint8Array(16).map((_, i) => i);
    const view = backing.subarray(4, 8);
    const b = asBuffer(view);
    expect(Buffer.isBuffer(b)).toBe(true);
    expect([...b]).toEqual([4, 5, 6, 7]);
    backing[5] = 99;
    expect(b[1]).toBe(99);
  });

  it("hands a Buffer back as it is", () => {
    const b = Buffer.from("abc");
    expect(asBuffer(b)).toBe(b);
  });
});

describe("storedBytes", () => {
  it("passes bytes through, turns text into UTF-8 bytes of its own, and refuses anything else", () => {
    const b = new Uint8Array([1, 2, 3]);
    expect(storedBytes(b, "engine", "k")).toBe(b);
    const t = storedBytes("héllo", "engine", "k");
    expect(t).toBeInstanceOf(Uint8Array);
    expect(new TextDecoder().decode(t)).toBe("héllo");
    expect(t.buffer.byteLength).toBe(t.byteLength); // not a slice of a shared pool
    for (const bad of [42, null, undefined, { a: 1 }, true]) {
      const err = (() => {
        try {
          return storedBytes(bad, "engine", "the-key");
        } catch (e) {
          return e;
        }
      })();
      expect(err, String(bad)).toBeInstanceOf(KvCorruptError);
      expect((err as Error).message).toMatch(/engine.*"the-key"/);
    }
  });
});
