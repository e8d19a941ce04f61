import { createCipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  createMemoryStore,
  encrypted,
  KvArgumentError,
  KvCorruptError,
  KvReadOnlyError,
  type KvStore,
  readOnly,
  tiered,
  withDefaultTtl,
} from "../src/index.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b?: Uint8Array) => (b === undefined ? undefined : new TextDecoder().decode(b));

describe("readOnly", () => {
  it("reads through and refuses every write without touching the store", async () => {
    const base = createMemoryStore();
    await base.set("k", enc("v"));
    const ro = readOnly(base);
    expect(dec(await ro.get("k"))).toBe("v");
    expect((await ro.listKeys()).keys).toEqual(["k"]);
    for (const write of [
      () => ro.set("k", enc("x")),
      () => ro.delete("k"),
      () => ro.setMany([{ key: "k", value: enc("x") }]),
      () => ro.deleteMany(["k"]),
      () => ro.clear(),
      () => ro.setIfAbsent("n", enc("x")),
      () => ro.compareAndSet("k", null, enc("x")),
    ]) {
      await expect(write()).rejects.toBeInstanceOf(KvReadOnlyError);
    }
    expect(dec(await base.get("k"))).toBe("v");
    await ro.close();
    expect(dec(await base.get("k"))).toBe("v");
  });
});

describe("withDefaultTtl", () => {
  it("applies the default only when the write names no TTL", async () => {
    const s = withDefaultTtl(createMemoryStore(), 60_000);
    const before = Date.now();
    await s.set("d", enc("v"));
    await s.set("e", enc("v"), { ttl: 5_000 });
    expect((await s.getEntry("d"))!.expiresAt).toBeGreaterThanOrEqual(before + 60_000);
    expect((await s.getEntry("e"))!.expiresAt).toBeLessThan(before + 10_000);
    expect(() => withDefaultTtl(createMemoryStore(), 0)).toThrow(KvArgumentError);
  });
});

describe("tiered", () => {
  it("serves from the fast tier, fills it on a miss, and invalidates it on every write", async () => {
    const fast = createMemoryStore();
    const slow = createMemoryStore();
    const s = tiered(fast, slow);
    await slow.set("k", enc("v1"));
    expect(dec(await s.get("k"))).toBe("v1");
    expect(await fast.has("k")).toBe(true);
    await s.set("k", enc("v2"));
    expect(await fast.has("k")).toBe(false);
    expect(dec(await s.get("k"))).toBe("v2");
    const { version } = await s.getVersioned("k");
    expect(await s.compareAndSet("k", version, enc("v3"))).toEqual(expect.any(String));
    expect(dec(await s.get("k"))).toBe("v3");
    await s.delete("k");
    expect(await s.get("k")).toBeUndefined();
  });

  it("caps how long the fast tier may serve a value another process changed", async () => {
    const fast = createMemoryStore();
    const slow = createMemoryStore();
    const s = tiered(fast, slow, { fastTtlMs: 50 });
    await s.set("k", enc("mine"));
    await s.get("k");
    await slow.set("k", enc("theirs")); // a writer elsewhere, not through this tier
    await new Promise((r) => setTimeout(r, 70));
    expect(dec(await s.get("k"))).toBe("theirs");
  });

  it("reports the slow tier's deadline on a hit, not the fast tier's shorter one", async () => {
    const fast = createMemoryStore();
    const slow = createMemoryStore();
    const s = tiered(fast, slow, { fastTtlMs: 5_000 });
    const deadline = Date.now() + 3_600_000;
    await s.set("k", enc("v"), { expiresAt: deadline });
    await s.set("forever", enc("w"));
    expect(await s.getEntry("k")).toMatchObject({ expiresAt: deadline }); // a miss: filled from slow
    expect(await fast.has("k")).toBe(true);
    expect(await s.getEntry("k")).toEqual({ key: "k", value: enc("v"), expiresAt: deadline }); // a hit
    expect(await s.getEntry("forever")).toMatchObject({ expiresAt: undefined });
    expect(await s.getEntry("forever")).toEqual({ key: "forever", value: enc("w"), expiresAt: undefined });
  });

  it("does not cache a value read while a write through the tier raced it", async () => {
    const fast = createMemoryStore();
    const slow = createMemoryStore();
    const s = tiered(fast, slow);
    await slow.set("k", enc("old"));
    const read = s.get("k"); // misses fast, reads slow…
    await s.set("k", enc("new")); // …while a write goes through
    await read;
    expect(dec(await s.get("k"))).toBe("new");
  });
});

describe("encrypted", () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);

  it("stores ciphertext, opens with old keys after rotation, seals with the current one", async () => {
    const base = createMemoryStore();
    const old = encrypted(base, { keys: { k1 }, current: "k1" });
    await old.set("secret", enc("attack at dawn"));
    const raw = (await base.get("secret"))!;
    expect(Buffer.from(raw).includes("attack")).toBe(false);
    const rotated = encrypted(base, { keys: { k1, k2 }, current: "k2" });
    expect(dec(await rotated.get("secret"))).toBe("attack at dawn");
    await rotated.set("secret", enc("attack at dusk"));
    expect(
      Buffer.from((await base.get("secret"))!)
        .subarray(2, 4)
        .toString(),
    ).toBe("k2");
    const onlyNew = encrypted(base, { keys: { k2 }, current: "k2" });
    expect(dec(await onlyNew.get("secret"))).toBe("attack at dusk");
  });

  it("detects tampering, values moved between keys, and unknown key ids", async () => {
    const base = createMemoryStore();
    const s = encrypted(base, { keys: { k1 }, current: "k1" });
    await s.set("a", enc("alpha"));
    await s.set("b", enc("beta"));
    const raw = (await base.get("a"))!;
    for (let i = 0; i < raw.length; i++) {
      const flipped = new Uint8Array(raw);
      flipped[i]! ^= 0x01;
      await base.set("a", flipped);
      await expect(s.get("a"), `byte ${i}`).rejects.toBeInstanceOf(KvCorruptError);
    }
    await base.set("b", raw); // a's ciphertext moved under b
    await expect(s.get("b")).rejects.toBeInstanceOf(KvCorruptError);
    const other = encrypted(base, { keys: { k9: k2 }, current: "k9" });
    await base.set("a", raw);
    await expect(other.get("a")).rejects.toThrow(/not configured/);
  });

  it("binds the whole stored key: a value copied between stores on different prefixes does not open", async () => {
    const base = createMemoryStore();
    const keys = { keys: { k1 }, current: "k1" };
    const layouts: Array<[string, (tenant: string) => KvStore]> = [
      ["on a prefix view", (t) => encrypted(base.withPrefix(t), keys)],
      ["on a nested view", (t) => encrypted(base.withPrefix("app:").withPrefix(t), keys)],
      ["through another decorator", (t) => encrypted(withDefaultTtl(base.withPrefix(t), 60_000), keys)],
      ["as a view of an encrypted store", (t) => encrypted(base, keys).withPrefix(t)],
    ];
    for (const [layout, make] of layouts) {
      await base.clear();
      const a = make("tenantA:");
      const b = make("tenantB:");
      await a.set("profile", enc("A's secret"));
      await b.set("profile", enc("B's own"));
      const stored = (await base.listKeys()).keys;
      const fromA = stored.find((k) => k.includes("tenantA:"))!;
      await base.set(fromA.replace("tenantA:", "tenantB:"), (await base.get(fromA))!);
      await expect(b.get("profile"), layout).rejects.toBeInstanceOf(KvCorruptError);
      expect(dec(await a.get("profile")), layout).toBe("A's secret");
    }
  });

  it("opens values of the first format (bound to the key inside the wrapped store) and binds them anew when written", async () => {
    const base = createMemoryStore();
    const view = base.withPrefix("tenantA:");
    // The first format: [1][id length][id][nonce][ciphertext][tag], the key without the view's prefix as associated data.
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", k1, iv);
    cipher.setAAD(enc("profile"));
    const body = Buffer.concat([cipher.update(enc("written before")), cipher.final()]);
    await view.set(
      "profile",
      Buffer.concat([Buffer.from([1, 2]), Buffer.from("k1"), iv, body, cipher.getAuthTag()]),
    );
    const s = encrypted(view, { keys: { k1 }, current: "k1" });
    expect(dec(await s.get("profile"))).toBe("written before");
    const strict = encrypted(view, { keys: { k1 }, current: "k1", openFormat1: false });
    await expect(strict.get("profile")).rejects.toThrow(/first format/);
    await s.set("profile", enc("written now"));
    expect((await view.get("profile"))![0]).toBe(2);
    expect(dec(await strict.get("profile"))).toBe("written now");
  });

  it("refuses bad keys at construction", () => {
    expect(() => encrypted(createMemoryStore(), { keys: { k: randomBytes(16) }, current: "k" })).toThrow(
      KvArgumentError,
    );
    expect(() => encrypted(createMemoryStore(), { keys: { k: k1 }, current: "nope" })).toThrow(
      KvArgumentError,
    );
  });
});
