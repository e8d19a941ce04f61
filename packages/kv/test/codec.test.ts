import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bytes, createMemoryStore, json, KvCodecError, text, withCodec } from "../src/index.js";

/** Keys the codec refuses by design (tested below); the round-trip property is about everything else. */
const forbidden = (v: unknown): boolean =>
  typeof v === "object" &&
  v !== null &&
  (Array.isArray(v)
    ? v.some(forbidden)
    : Object.keys(v).some((k) => ["__proto__", "constructor", "prototype"].includes(k)) ||
      Object.values(v).some(forbidden));

describe("json codec", () => {
  const c = json();
  it("round-trips every JSON value exactly (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        fc.pre(!forbidden(value));
        // -0 is the one JSON number that reads back changed (as 0), as the codec documents.
        const zeroed = JSON.parse(JSON.stringify(value), (_k, v) => (Object.is(v, -0) ? 0 : v));
        expect(c.decode(c.encode(value as never))).toStrictEqual(zeroed);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses what it cannot round-trip, with a message that says what to do", () => {
    const bad: unknown[] = [
      undefined,
      new Date(),
      new Map(),
      10n,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      () => 1,
      Symbol("s"),
      new Uint8Array(2),
      { nested: [1, { when: new Date() }] },
    ];
    for (const value of bad) expect(() => c.encode(value as never), String(value)).toThrow(KvCodecError);
    expect(() => c.encode(new Date() as never)).toThrow(/toISOString/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => c.encode(cyclic as never)).toThrow(/circular/);
  });

  it("refuses prototype-polluting keys on encode and on decode", () => {
    const polluted = JSON.parse('{"a":{"__proto__":{"admin":true}}}');
    expect(() => c.encode(polluted)).toThrow(KvCodecError);
    for (const key of ["__proto__", "constructor", "prototype"]) {
      const raw = new TextEncoder().encode(`{"x":[{"${key}":{"polluted":1}}]}`);
      expect(() => c.decode(raw), key).toThrow(KvCodecError);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The check reads parsed keys, so a name spelled with JSON escapes is refused too.
    for (const spelled of [
      "\\u005f_proto__",
      "\\u005F\\u005Fproto\\u005f\\u005f",
      "constructo\\u0072",
      "pro\\u0074otype",
    ]) {
      const raw = new TextEncoder().encode(`{"x":{"${spelled}":{"polluted":1}}}`);
      expect(() => c.decode(raw), spelled).toThrow(KvCodecError);
    }
    // Escapes elsewhere still decode.
    expect(c.decode(new TextEncoder().encode('{"k":"caf\\u00e9"}'))).toEqual({ k: "café" });
    // A value that merely contains the word is fine.
    expect(c.decode(c.encode({ note: "constructor of prototype" } as never))).toEqual({
      note: "constructor of prototype",
    });
  });

  it("refuses invalid UTF-8 and invalid JSON with KvCodecError", () => {
    expect(() => c.decode(new Uint8Array([0xff, 0xfe]))).toThrow(KvCodecError);
    expect(() => c.decode(new TextEncoder().encode("{nope"))).toThrow(KvCodecError);
  });
});

describe("text and bytes codecs", () => {
  it("round-trip and refuse what they cannot hold", () => {
    expect(text.decode(text.encode("héllo 😀"))).toBe("héllo 😀");
    expect(() => text.encode("\ud800")).toThrow(KvCodecError);
    expect(() => text.decode(new Uint8Array([0xc3]))).toThrow(KvCodecError);
    const b = new Uint8Array([0, 255]);
    expect(bytes.decode(bytes.encode(b))).toEqual(b);
  });
});

describe("withCodec", () => {
  it("stores typed values through the byte store, including views and CAS", async () => {
    const store = createMemoryStore();
    const carts = withCodec<{ items: string[] }>(store).withPrefix("cart:");
    await carts.set("c1", { items: ["apple"] });
    expect(await carts.get("c1")).toEqual({ items: ["apple"] });
    expect(await store.has("cart:c1")).toBe(true);
    const { version } = await carts.getVersioned("c1");
    expect(await carts.compareAndSet("c1", version, { items: [] })).toEqual(expect.any(String));
    expect(await carts.compareAndSet("c1", version, { items: ["x"] })).toBe(false);
    const all: Array<[string, unknown]> = [];
    for await (const e of carts.entries()) all.push(e);
    expect(all).toEqual([["c1", { items: [] }]]);
  });
});
