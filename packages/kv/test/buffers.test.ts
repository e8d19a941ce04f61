import { describe, expect, it } from "vitest";
import { asBuffer } from "../src/index.js";

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
