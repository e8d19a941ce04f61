import { describe, expect, it } from "vitest";
import { createStore, type KvDriver, prefixUpperBound } from "../src/driver.js";
import { KvArgumentError, KvClosedError, KvUnsupportedError, KvValueTooLargeError } from "../src/index.js";

const enc = (s: string) => new TextEncoder().encode(s);

/** A driver that returns whatever it holds, expired or not, and lists keys outside the prefix asked for. */
function lyingDriver(
  caps: Partial<KvDriver["capabilities"]> = {},
): KvDriver & { rows: Map<string, { value: Uint8Array; expiresAt?: number }> } {
  const rows = new Map<string, { value: Uint8Array; expiresAt?: number }>();
  return {
    name: "liar",
    capabilities: { ttl: "emulated", ...caps },
    rows,
    get: (k) => rows.get(k),
    set: (k, value, expiresAt) => {
      rows.set(k, { value, expiresAt });
    },
    delete: (k) => rows.delete(k),
    list: () => ({ items: [...rows].map(([key, r]) => ({ key, ...r })), cursor: undefined }),
  };
}

describe("createStore guarantees what drivers may get wrong", () => {
  it("never returns an expired entry, even when the driver does", async () => {
    const d = lyingDriver();
    d.rows.set("old", { value: enc("x"), expiresAt: Date.now() - 1 });
    d.rows.set("new", { value: enc("y") });
    const s = createStore(d);
    expect(await s.get("old")).toBeUndefined();
    expect(await s.getEntry("old")).toBeUndefined();
    expect(await s.has("old")).toBe(false);
    expect(await s.getMany(["old", "new"])).toEqual([undefined, enc("y")]);
    expect((await s.listKeys()).keys).toEqual(["new"]);
  });

  it("never lets a view list keys outside its prefix", async () => {
    const d = lyingDriver();
    d.rows.set("a:1", { value: enc("1") });
    d.rows.set("b:1", { value: enc("2") });
    expect((await createStore(d).withPrefix("a:").listKeys()).keys).toEqual(["1"]);
  });

  it("refuses values over the driver's declared limit before calling it", async () => {
    const d = lyingDriver({ maxValueBytes: 10 });
    const s = createStore(d);
    await expect(s.set("k", new Uint8Array(11))).rejects.toBeInstanceOf(KvValueTooLargeError);
    await expect(s.setMany([{ key: "k", value: new Uint8Array(11) }])).rejects.toBeInstanceOf(
      KvValueTooLargeError,
    );
    expect(d.rows.size).toBe(0);
  });

  it("refuses atomic operations a driver does not declare, naming the capability", async () => {
    const s = createStore(lyingDriver());
    const err = await s.setIfAbsent("k", enc("v")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvUnsupportedError);
    expect((err as Error).message).toMatch(/capabilities/);
    await expect(s.compareAndSet("k", null, enc("v"))).rejects.toBeInstanceOf(KvUnsupportedError);
  });

  it("deletes instead of storing when the deadline has already passed", async () => {
    const d = lyingDriver();
    const s = createStore(d);
    await s.set("k", enc("v"));
    await s.set("k", enc("w"), { expiresAt: Date.now() - 5 });
    expect(d.rows.has("k")).toBe(false);
  });

  it("rejects bad cursors and closes every view with the root", async () => {
    const s = createStore(lyingDriver());
    await expect(s.listKeys({ cursor: "" })).rejects.toBeInstanceOf(KvArgumentError);
    const v = s.withPrefix("x:");
    await v.close();
    await expect(s.get("k")).rejects.toBeInstanceOf(KvClosedError);
  });

  it("returns the same object for an empty prefix and freezes views", () => {
    const s = createStore(lyingDriver());
    expect(s.withPrefix("")).toBe(s);
    expect(Object.isFrozen(s.withPrefix("a"))).toBe(true);
  });
});

describe("prefixUpperBound", () => {
  it("bounds every string with the prefix, in code-point order", () => {
    expect(prefixUpperBound("user:")).toBe("user;");
    expect(prefixUpperBound("")).toBeUndefined();
    expect(prefixUpperBound("a\u{10ffff}")).toBe("b");
    expect(prefixUpperBound("\u{10ffff}")).toBeUndefined();
    expect(prefixUpperBound("a\ud7ff")).toBe("a\ue000");
    const keys = ["user:", "user:\u{10ffff}x", "user:zzz", "user:é"];
    const upper = prefixUpperBound("user:")!;
    const cmp = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
    for (const k of keys) expect(cmp(k, upper)).toBeLessThan(0);
    expect(cmp("user;", upper)).toBe(0);
  });
});
