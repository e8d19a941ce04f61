import { createMemoryStore, KvClosedError, type KvStore } from "@kvsession/kv";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { deriveKeys, secretBytes, signId } from "../src/crypto.js";
import {
  createSessions,
  hashId,
  type Secret,
  SessionConfigError,
  SessionDataError,
  SessionStoreError,
  type Sessions,
} from "../src/index.js";
import { createJar, request, SECRET, SECRET_2 } from "./helpers.js";

type Data = { n: number; x: unknown };
const IDLE = 10 * 60_000;
const ABS = 60 * 60_000;

let store: KvStore;
let sessions: Sessions<Data>;
const make = (secrets: Secret[] = [SECRET], s = store) =>
  createSessions<Data>({
    store: s,
    secrets,
    idleTimeoutMs: IDLE,
    absoluteTimeoutMs: ABS,
    touchIntervalMs: 1000,
  });

beforeEach(() => {
  store = createMemoryStore();
  sessions = make();
});
afterEach(async () => {
  vi.useRealTimers();
  await store.close();
});

/** A browser holding a live session with n = 1. */
async function loggedIn() {
  const jar = createJar();
  await request(sessions, jar, (s) => s.set("n", 1));
  return jar;
}

/** Opens a session with this cookie value on a CLOSED store: any store access would throw. */
async function neverReachesStore(cookie: string): Promise<void> {
  const closed = createMemoryStore();
  const s = make([SECRET], closed);
  await closed.close();
  const session = s.open({ cookieHeader: `__Host-sid=${cookie}`, secure: true });
  expect(await session.get("n")).toBeUndefined();
  const out = await session.commit();
  // The bad cookie is cleared, and nothing was read or written.
  expect(out.setCookie[0]).toMatch(/^__Host-sid=; /);
}

describe("attacks and bad input", () => {
  it("session IDs are 256 random bits, base64url, and never repeat", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", i));
      const id = jar.jar.get("__Host-sid")!.split(".")[0]!;
      expect(Buffer.from(id, "base64url")).toHaveLength(32);
      ids.add(id);
    }
    expect(ids.size).toBe(500);
  });

  it("a tampered signature is refused before the store is reached", async () => {
    const jar = await loggedIn();
    const good = jar.jar.get("__Host-sid")!;
    const flipped = good.slice(0, 50) + (good[50] === "A" ? "B" : "A") + good.slice(51);
    await neverReachesStore(flipped);
    const s = sessions.open({ cookieHeader: `__Host-sid=${flipped}`, secure: true });
    expect(await s.get("n")).toBeUndefined();
  });

  it("a signature twin using base64url's spare bits is refused", async () => {
    const jar = await loggedIn();
    const good = jar.jar.get("__Host-sid")!;
    const last = good.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const twin = good.slice(0, -1) + alphabet[alphabet.indexOf(last) ^ 1];
    expect(Buffer.from(twin.split(".")[1]!, "base64url")).toEqual(
      Buffer.from(good.split(".")[1]!, "base64url"),
    );
    await neverReachesStore(twin);
  });

  it("a cookie signed with a rotated-out secret is refused; rotation keeps old cookies while both are listed", async () => {
    const jar = await loggedIn();
    const untouched = createJarFrom(jar);
    const rotating = make([SECRET_2, SECRET]);
    expect((await request(rotating, jar, (s) => s.get("n"))).value).toBe(1);
    const rotatedOut = make([SECRET_2]);
    expect((await request(rotatedOut, untouched, (s) => s.get("n"))).value).toBeUndefined();
    // New cookies are signed with the first secret only.
    const fresh = createJar();
    await request(rotating, fresh, (s) => s.set("n", 2));
    expect((await request(rotatedOut, fresh, (s) => s.get("n"))).value).toBe(2);
    expect((await request(make([SECRET]), createJarFrom(fresh), (s) => s.get("n"))).value).toBeUndefined();
  });

  it("a truncated ID is refused before the store is reached", async () => {
    const good = (await loggedIn()).jar.get("__Host-sid")!;
    await neverReachesStore(good.slice(1));
    await neverReachesStore(good.slice(0, -1));
    await neverReachesStore(good.split(".")[0]!);
  });

  it("an oversized ID is refused before the store is reached", async () => {
    const good = (await loggedIn()).jar.get("__Host-sid")!;
    await neverReachesStore(`A${good}`);
    await neverReachesStore("A".repeat(4000));
  });

  it("a non-ASCII ID never throws and never reaches the store", async () => {
    const good = (await loggedIn()).jar.get("__Host-sid")!;
    const s = sessions.open({
      cookieHeader: `__Host-sid=${good.slice(0, 5)}é${good.slice(6)}`,
      secure: true,
    });
    expect(await s.get("n")).toBeUndefined();
    await neverReachesStore(encodeURIComponent(`${good.slice(0, 5)}é`) + good.slice(11));
  });

  it("a validly signed ID that is not in the store starts a fresh session with a NEW ID", async () => {
    const keys = deriveKeys(secretBytes([SECRET]), "cookie-signature");
    const chosen = "C".repeat(43);
    const jar = createJar();
    jar.jar.set("__Host-sid", signId(keys, chosen));
    const { value } = await request(sessions, jar, async (s) => {
      const v = await s.get("n");
      s.set("n", 5);
      return v;
    });
    expect(value).toBeUndefined();
    expect(jar.jar.get("__Host-sid")!.startsWith(chosen)).toBe(false);
    expect(await sessions.records.get(hashId(chosen))).toBeUndefined();
  });

  it("fixation: a client-chosen (unsigned) ID is never adopted", async () => {
    const jar = createJar();
    jar.jar.set("__Host-sid", "attacker-chosen-id");
    await request(sessions, jar, (s) => s.set("n", 1));
    const id = jar.jar.get("__Host-sid")!.split(".")[0]!;
    expect(id).not.toBe("attacker-chosen-id");
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("fixation: login regenerates, so an ID planted before login is dead after it", async () => {
    const victim = await loggedIn();
    const planted = victim.jar.get("__Host-sid")!;
    await request(sessions, victim, (s) => s.bindUser("victim"));
    const attacker = createJar();
    attacker.jar.set("__Host-sid", planted);
    expect((await request(sessions, attacker, (s) => s.userId())).value).toBeUndefined();
  });

  it("an expired record is not used, exactly at the idle deadline", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const T0 = Date.UTC(2030, 0, 1);
    vi.setSystemTime(T0);
    const jar = await loggedIn();
    vi.setSystemTime(T0 + IDLE - 1);
    // This read refreshes last-seen (the touch interval has passed): the deadline moves to T0 + 2 IDLE - 1.
    expect((await request(sessions, createJarFrom(jar), (s) => s.get("n"))).value).toBe(1);
    vi.setSystemTime(T0 + 2 * IDLE - 1);
    expect((await request(sessions, createJarFrom(jar), (s) => s.get("n"))).value).toBeUndefined();
  });

  it("clock at the exact absolute deadline: the session has ended", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const T0 = Date.UTC(2030, 0, 1);
    vi.setSystemTime(T0);
    const jar = await loggedIn();
    for (let at = T0 + IDLE - 1; at < T0 + ABS; at += IDLE - 1) {
      vi.setSystemTime(at);
      await request(sessions, jar, (s) => s.touch());
    }
    vi.setSystemTime(T0 + ABS - 1);
    expect((await request(sessions, createJarFrom(jar), (s) => s.get("n"))).value).toBe(1);
    vi.setSystemTime(T0 + ABS);
    expect((await request(sessions, createJarFrom(jar), (s) => s.get("n"))).value).toBeUndefined();
  });

  it("replaying a cookie after logout gets an empty session", async () => {
    const jar = await loggedIn();
    const copied = jar.jar.get("__Host-sid")!;
    await request(sessions, jar, (s) => s.destroy());
    const thief = createJar();
    thief.jar.set("__Host-sid", copied);
    const { value } = await request(sessions, thief, (s) => s.get("n"));
    expect(value).toBeUndefined();
    expect(thief.jar.size).toBe(0);
  });

  it("__proto__ as a session key is refused at once", () => {
    const s = sessions.open({ secure: true });
    expect(() => s.set("__proto__" as "n", 1)).toThrow(SessionDataError);
    expect(() => s.set("constructor" as "n", 1)).toThrow(SessionDataError);
  });

  it("__proto__ inside a stored value is refused on save", async () => {
    const s = sessions.open({ secure: true });
    s.set("x", JSON.parse('{"__proto__": {"polluted": true}}'));
    await expect(s.commit()).rejects.toThrow(SessionDataError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("values JSON cannot hold are refused on save instead of being mangled", async () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, new Date(0), () => 1, 10n, new Map()]) {
      const s = sessions.open({ secure: true });
      s.set("x", bad);
      await expect(s.commit()).rejects.toThrow(SessionDataError);
    }
  });

  it("__proto__ planted in the stored record is never loaded (fresh session, no pollution)", async () => {
    const jar = await loggedIn();
    const h = hashId(jar.jar.get("__Host-sid")!.split(".")[0]!);
    const corrupt: unknown[] = [];
    const watched = createSessions<Data>({
      store,
      secrets: [SECRET],
      onCorruptRecord: (e) => corrupt.push(e),
    });
    await store
      .withPrefix("sess:")
      .set(
        h,
        new TextEncoder().encode('{"data":{"__proto__":{"polluted":true}},"createdAt":1,"lastSeenAt":1}'),
        {
          ttl: 60_000,
        },
      );
    const { value } = await request(watched, jar, (s) => s.all());
    expect(value).toEqual({});
    expect(corrupt).toHaveLength(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("two different live sessions in one Cookie header (cookie tossing) are both refused", async () => {
    const victim = await loggedIn();
    const attacker = createJar();
    await request(sessions, attacker, (s) => s.set("n", 666));
    const header = `__Host-sid=${attacker.jar.get("__Host-sid")}; __Host-sid=${victim.jar.get("__Host-sid")}`;
    const s = sessions.open({ cookieHeader: header, secure: true });
    expect(await s.get("n")).toBeUndefined();
  });

  it("a duplicate that does not verify is ignored; the same valid value twice is fine", async () => {
    const jar = await loggedIn();
    const good = jar.jar.get("__Host-sid")!;
    for (const header of [`__Host-sid=junk; __Host-sid=${good}`, `__Host-sid=${good}; __Host-sid=${good}`]) {
      const s = sessions.open({ cookieHeader: header, secure: true });
      expect(await s.get("n")).toBe(1);
    }
  });

  it("malformed Cookie headers never throw out of the core", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: "binary" }),
          fc.constantFrom(";;;", "=", 'a="', "__Host-sid"),
          fc.anything(),
        ),
        async (h) => {
          const s = sessions.open({ cookieHeader: h, secure: true });
          expect(await s.get("n")).toBeUndefined();
          await s.commit();
        },
      ),
      { numRuns: 300 },
    );
  });

  it("secrets shorter than 32 bytes are refused at creation", () => {
    expect(() => make(["short"])).toThrow(SessionConfigError);
    expect(() => make([SECRET, "x".repeat(31)])).toThrow(SessionConfigError);
    expect(() => make([])).toThrow(SessionConfigError);
    expect(() => make([new Uint8Array(32)])).not.toThrow();
  });

  it("a store failure surfaces as SessionStoreError with the KvError as cause, never an empty session", async () => {
    const jar = await loggedIn();
    await store.close();
    const s = sessions.open({ cookieHeader: jar.header(), secure: true });
    const err = await s.get("n").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionStoreError);
    expect((err as SessionStoreError).code).toBe("SESSION_STORE");
    expect((err as Error).cause).toBeInstanceOf(KvClosedError);
    // The message is what a framework may show a client: it names the operation, not the store's error.
    expect((err as Error).message).toBe("session store unavailable (load); see the error's cause");
    const w = sessions.open({ cookieHeader: jar.header(), secure: true });
    w.set("n", 2);
    await expect(w.commit()).rejects.toThrow(SessionStoreError);
  });
});

function createJarFrom(jar: ReturnType<typeof createJar>) {
  const copy = createJar();
  for (const [k, v] of jar.jar) copy.jar.set(k, v);
  return copy;
}
