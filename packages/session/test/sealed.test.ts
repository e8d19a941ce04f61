import { randomBytes } from "node:crypto";
import { createMemoryStore } from "@kvsession/kv";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  createSealedSessions,
  type SealedSessionsOptions,
  SessionConfigError,
  SessionCookieTooLargeError,
  SessionDataError,
} from "../src/index.js";
import { createJar, request, SECRET, SECRET_2 } from "./helpers.js";

type Data = { n: number; blob: string; note: string; x: unknown };
const IDLE = 10 * 60_000;
const ABS = 60 * 60_000;
const make = (o: Partial<SealedSessionsOptions> = {}) =>
  createSealedSessions<Data>({
    secrets: [SECRET],
    idleTimeoutMs: IDLE,
    absoluteTimeoutMs: ABS,
    touchIntervalMs: 1000,
    ...o,
  });

const T0 = Date.UTC(2030, 0, 1);
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

/** Random text that deflate cannot shrink, so it really needs chunks. */
const incompressible = (bytes: number) => randomBytes(bytes).toString("base64url");

describe("sealed-cookie sessions", () => {
  it("round-trips data in an encrypted cookie; the plaintext is not visible", async () => {
    const s = make();
    const jar = createJar();
    const first = await request(s, jar, (x) => x.set("note", "top-secret-note"));
    expect(first.result.outcome).toBe("created");
    expect(first.result.headers["cache-control"]).toBe("no-store");
    const raw = jar.jar.get("__Host-sid")!;
    expect(Buffer.from(raw, "base64url").toString("latin1")).not.toContain("top-secret");
    expect((await request(s, jar, (x) => x.get("note"))).value).toBe("top-secret-note");
  });

  it("a read-only request inside the touch interval sends no cookie", async () => {
    const s = make();
    const jar = createJar();
    await request(s, jar, (x) => x.set("n", 1));
    vi.setSystemTime(T0 + 999);
    const { result } = await request(s, jar, (x) => x.get("n"));
    expect(result.setCookie).toEqual([]);
    expect(result.outcome).toBe("unchanged");
  });

  it("every flipped byte of a sealed cookie invalidates it", async () => {
    const s = make();
    const jar = createJar();
    await request(s, jar, (x) => x.set("n", 1));
    const raw = Buffer.from(jar.jar.get("__Host-sid")!, "base64url");
    for (let i = 0; i < raw.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(raw);
        bad[i] = bad[i]! ^ bit;
        const session = s.open({ cookieHeader: `__Host-sid=${bad.toString("base64url")}`, secure: true });
        expect(await session.get("n")).toBeUndefined();
      }
    }
  });

  it("a sealed value moved to another cookie name does not open (name bound into the AAD)", async () => {
    const s = make();
    const jar = createJar();
    await request(s, jar, (x) => x.set("n", 1));
    const session = s.open({ cookieHeader: `sid=${jar.jar.get("__Host-sid")}`, secure: false });
    expect(await session.get("n")).toBeUndefined();
  });

  it("two different valid sealed sessions in one Cookie header (cookie tossing) are both refused", async () => {
    const s = make();
    const a = createJar();
    const b = createJar();
    await request(s, a, (x) => x.set("n", 1));
    await request(s, b, (x) => x.set("n", 2));
    const header = `__Host-sid=${a.jar.get("__Host-sid")}; __Host-sid=${b.jar.get("__Host-sid")}`;
    expect(await s.open({ cookieHeader: header, secure: true }).get("n")).toBeUndefined();
    const same = `__Host-sid=junk; __Host-sid=${a.jar.get("__Host-sid")}`;
    expect(await s.open({ cookieHeader: same, secure: true }).get("n")).toBe(1);
  });

  it("rotation: old keys open, the newest seals, a touched cookie is re-sealed on the newest key", async () => {
    const jar = createJar();
    await request(make(), jar, (x) => x.set("n", 1));
    const rotating = make({ secrets: [SECRET_2, SECRET] });
    const onlyNew = make({ secrets: [SECRET_2] });
    const copy = createJar();
    copy.jar.set("__Host-sid", jar.jar.get("__Host-sid")!);
    expect((await request(onlyNew, copy, (x) => x.get("n"))).value).toBeUndefined();
    const { result } = await request(rotating, jar, (x) => x.get("n"));
    expect(result.setCookie).toHaveLength(1); // re-sealed although nothing changed
    expect((await request(onlyNew, jar, (x) => x.get("n"))).value).toBe(1);
  });

  it("issued-at and expiry are inside and checked: idle deadline, exact boundary", async () => {
    const s = make();
    const jar = createJar();
    await request(s, jar, (x) => x.set("n", 1));
    const copy = () => {
      const c = createJar();
      c.jar.set("__Host-sid", jar.jar.get("__Host-sid")!);
      return c;
    };
    vi.setSystemTime(T0 + IDLE - 1);
    expect((await request(s, copy(), (x) => x.get("n"))).value).toBe(1);
    vi.setSystemTime(T0 + IDLE);
    expect((await request(s, copy(), (x) => x.get("n"))).value).toBeUndefined();
  });

  it("the absolute lifetime holds even for an active sealed session", async () => {
    const s = make();
    const jar = createJar();
    await request(s, jar, (x) => x.set("n", 1));
    for (let at = T0 + IDLE - 1; at < T0 + ABS; at += IDLE - 1) {
      vi.setSystemTime(at);
      expect((await request(s, jar, (x) => x.get("n"))).value).toBe(1);
    }
    vi.setSystemTime(T0 + ABS);
    expect((await request(s, jar, (x) => x.get("n"))).value).toBeUndefined();
  });

  it("compresses above the threshold only when asked to", async () => {
    const s = make({ compressAboveBytes: 512 });
    const jar = createJar();
    await request(s, jar, (x) => x.set("blob", "ab".repeat(3000)));
    expect(jar.jar.get("__Host-sid")!.length).toBeLessThan(1000);
    expect((await request(s, jar, (x) => x.get("blob"))).value).toBe("ab".repeat(3000));
  });

  it("does not compress by default, so the cookie's length reveals nothing about repeated content", async () => {
    // Compress-then-encrypt: a guess that matches a secret next to it would shorten the cookie.
    const s = make();
    const lengths = [];
    for (const guess of ["pin=4711", "pin=0000"]) {
      const x = s.open({ secure: true });
      x.set("note", "pin=4711".repeat(40));
      x.set("blob", guess.repeat(40));
      const { setCookie } = await x.commit();
      lengths.push(setCookie.join("").length);
    }
    expect(lengths[0]).toBe(lengths[1]);
    const z = make({ compressAboveBytes: 0 });
    const zl = [];
    for (const guess of ["pin=4711", "pin=0000"]) {
      const x = z.open({ secure: true });
      x.set("note", "pin=4711".repeat(40));
      x.set("blob", guess.repeat(40));
      zl.push((await x.commit()).setCookie.join("").length);
    }
    expect(zl[0]).toBeLessThan(zl[1]!);
  });

  it("splits a large session into chunks that each fit in 4096 bytes with their attributes", async () => {
    const s = make({ cookie: { domain: "example.com", persistent: true } });
    const jar = createJar();
    const blob = incompressible(6000);
    const { result } = await request(s, jar, (x) => x.set("blob", blob));
    expect([...jar.jar.keys()]).toEqual(["__Secure-sid.0", "__Secure-sid.1", "__Secure-sid.2"]);
    for (const line of result.setCookie) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(4096);
    expect(result.setCookie[0]).toMatch(/; Domain=example.com; Max-Age=3600; Expires=/);
    expect((await request(s, jar, (x) => x.get("blob"))).value).toBe(blob);
  });

  describe("chunk mix-ups all invalidate the session", () => {
    async function chunked() {
      const s = make();
      const jar = createJar();
      await request(s, jar, (x) => x.set("blob", incompressible(6000)));
      expect(jar.jar.size).toBe(3);
      return { s, jar };
    }
    const read = async (s: ReturnType<typeof make>, header: string) =>
      s.open({ cookieHeader: header, secure: true }).get("blob");

    it("a missing chunk", async () => {
      const { s, jar } = await chunked();
      jar.jar.delete("__Host-sid.2");
      expect(await read(s, jar.header())).toBeUndefined();
    });

    it("reordered chunks", async () => {
      const { s, jar } = await chunked();
      const one = jar.jar.get("__Host-sid.1")!;
      jar.jar.set("__Host-sid.1", jar.jar.get("__Host-sid.2")!);
      jar.jar.set("__Host-sid.2", one);
      expect(await read(s, jar.header())).toBeUndefined();
    });

    it("a chunk from another session", async () => {
      const a = await chunked();
      const b = await chunked();
      a.jar.jar.set("__Host-sid.1", b.jar.jar.get("__Host-sid.1")!);
      expect(await read(a.s, a.jar.header())).toBeUndefined();
    });

    it("a tampered chunk count", async () => {
      const { s, jar } = await chunked();
      jar.jar.set("__Host-sid.0", jar.jar.get("__Host-sid.0")!.replace(/^3~/, "2~"));
      expect(await read(s, jar.header())).toBeUndefined();
      jar.jar.set("__Host-sid.0", jar.jar.get("__Host-sid.0")!.replace(/^2~/, "4~"));
      jar.jar.set("__Host-sid.3", "AAAA");
      expect(await read(s, jar.header())).toBeUndefined();
    });

    it("a chunk sent twice", async () => {
      const { s, jar } = await chunked();
      expect(await read(s, `${jar.header()}; __Host-sid.1=${jar.jar.get("__Host-sid.1")}`)).toBeUndefined();
    });

    it("chunks concatenated into one cookie", async () => {
      const { s, jar } = await chunked();
      const joined = [0, 1, 2]
        .map((i) => jar.jar.get(`__Host-sid.${i}`)!)
        .join("")
        .replace(/^3~/, "");
      expect(await read(s, `__Host-sid=${joined}`)).toBeUndefined();
    });

    it("stale chunks are cleared when the session shrinks", async () => {
      const { s, jar } = await chunked();
      const { result } = await request(s, jar, (x) => x.set("blob", "small"));
      expect(result.setCookie.filter((l) => l.includes("Max-Age=0")).map((l) => l.split("=")[0])).toEqual([
        "__Host-sid.0",
        "__Host-sid.1",
        "__Host-sid.2",
      ]);
      expect([...jar.jar.keys()]).toEqual(["__Host-sid"]);
      expect((await request(s, jar, (x) => x.get("blob"))).value).toBe("small");
    });
  });

  it("with chunking off, an oversized session is a typed error before any header is produced", async () => {
    const s = make({ chunking: false });
    const session = s.open({ secure: true });
    session.set("blob", incompressible(5000));
    await expect(session.commit()).rejects.toThrow(SessionCookieTooLargeError);
  });

  it("counts the attributes: a value that fits alone but not with a long Domain fails", async () => {
    // Find a payload size that fits with no attributes and overflows once Domain and Path are long.
    const plain = make({ chunking: false });
    const padded = make({
      chunking: false,
      cookie: { domain: `${"d".repeat(200)}.example.com`, path: `/${"p".repeat(200)}` },
    });
    let fits = 0;
    for (let n = 1900; n < 2400; n += 10) {
      const a = plain.open({ secure: true });
      a.set("blob", incompressible(n));
      try {
        await a.commit();
        fits = n;
      } catch {
        break;
      }
    }
    expect(fits).toBeGreaterThan(0);
    const b = padded.open({ secure: true });
    b.set("blob", incompressible(fits));
    await expect(b.commit()).rejects.toThrow(SessionCookieTooLargeError);
  });

  it("regenerate() changes the inner session ID; destroy() clears every cookie of ours", async () => {
    const s = make();
    const jar = createJar();
    await request(s, jar, (x) => x.set("n", 1));
    const before = jar.jar.get("__Host-sid");
    await request(s, jar, (x) => x.regenerate());
    expect(jar.jar.get("__Host-sid")).not.toBe(before);
    expect((await request(s, jar, (x) => x.get("n"))).value).toBe(1);
    const { result } = await request(s, jar, (x) => x.destroy());
    expect(result.outcome).toBe("destroyed");
    expect(jar.jar.size).toBe(0);
  });

  it("flash messages are read once", async () => {
    const s = make();
    const jar = createJar();
    await request(s, jar, (x) => x.flash("ok", "done"));
    expect((await request(s, jar, (x) => x.flashes("ok"))).value).toEqual(["done"]);
    expect((await request(s, jar, (x) => x.flashes("ok"))).value).toEqual([]);
  });

  it("__proto__ in sealed data is refused", async () => {
    const s = make();
    const session = s.open({ secure: true });
    expect(() => session.set("__proto__" as "n", 1)).toThrow(SessionDataError);
    session.set("x", JSON.parse('{"__proto__": 1}'));
    await expect(session.commit()).rejects.toThrow(SessionDataError);
  });

  it("revocation: a per-user not-before time ends every other sealed session of the user", async () => {
    const revocationStore = createMemoryStore();
    const s = make({ revocationStore });
    const laptop = createJar();
    const phone = createJar();
    await request(s, laptop, (x) => x.bindUser("ada"));
    await request(s, phone, (x) => x.bindUser("ada"));
    vi.setSystemTime(T0 + 5);
    const current = s.open({ cookieHeader: laptop.header(), secure: true });
    expect(await current.userId()).toBe("ada");
    await s.revokeUser("ada", { except: current });
    laptop.apply(await current.commit());
    expect((await request(s, phone, (x) => x.userId())).value).toBeUndefined();
    expect((await request(s, laptop, (x) => x.userId())).value).toBe("ada");
    // A copy of the laptop cookie from before the revocation is dead too.
    await s.revokeUser("ada");
    expect((await request(s, laptop, (x) => x.userId())).value).toBeUndefined();
    await revocationStore.close();
  });

  it("revokeUser without a revocation store is a configuration error", async () => {
    await expect(make().revokeUser("ada")).rejects.toThrow(SessionConfigError);
  });
});
