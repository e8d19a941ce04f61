import { createMemoryStore } from "@kvsession/kv";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type CommitResult,
  cookieLifetime,
  cookieLifetimeProperties,
  createSealedSessions,
  createSessions,
  type SealedSessions,
  SessionDataError,
  type Sessions,
} from "../src/index.js";
import { createJar, request, SECRET } from "./helpers.js";

const DAY = 24 * 3600_000;
const ABS = 30 * DAY;
const IDLE = 7 * DAY;
const T0 = Date.UTC(2030, 0, 1);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

/** Max-Age of the session cookie (not a clearing one), or "session" for a browser-session cookie. */
function maxAgeOf(result: CommitResult): number | "session" | "none" {
  const line = result.setCookie.find((l) => !l.includes("Max-Age=0"));
  if (line === undefined) return "none";
  const m = /; Max-Age=(\d+)/.exec(line);
  return m ? Number(m[1]) : "session";
}

const modes: Array<[string, (persistent: boolean) => Sessions | SealedSessions]> = [
  [
    "server-side",
    (persistent) =>
      createSessions({
        store: createMemoryStore(),
        secrets: [SECRET],
        absoluteTimeoutMs: ABS,
        idleTimeoutMs: IDLE,
        cookie: { persistent },
      }),
  ],
  [
    "sealed",
    (persistent) =>
      createSealedSessions({
        secrets: [SECRET],
        absoluteTimeoutMs: ABS,
        idleTimeoutMs: IDLE,
        cookie: { persistent },
      }),
  ],
];

describe.each(modes)("per-session cookie lifetime (%s)", (mode, make) => {
  it("a remembered session gets a persistent cookie, a plain one a browser-session cookie", async () => {
    const sessions = make(false);
    const remembered = createJar();
    const plain = createJar();
    const a = await request(sessions, remembered, async (s) => {
      await s.bindUser("u1");
      s.setCookieMaxAge(14 * DAY);
    });
    expect(maxAgeOf(a.result)).toBe(14 * 24 * 3600);
    const b = await request(sessions, plain, (s) => s.bindUser("u2"));
    expect(maxAgeOf(b.result)).toBe("session");
    const read = await request(sessions, remembered, (s) => s.cookieMaxAge());
    expect(read.value).toBe(14 * DAY);
  });

  it("a rotation keeps the lifetime, with or without the data", async () => {
    const sessions = make(false);
    const jar = createJar();
    await request(sessions, jar, (s) => {
      s.set("n", 1);
      s.setCookieMaxAge(2 * DAY);
    });
    vi.setSystemTime(T0 + 3600_000);
    const rotated = await request(sessions, jar, (s) => s.regenerate({ keepData: false }));
    expect(maxAgeOf(rotated.result)).toBe(2 * 24 * 3600);
    const login = await request(sessions, jar, (s) => s.bindUser("u1"));
    expect(maxAgeOf(login.result)).toBe(2 * 24 * 3600);
  });

  it("a write re-sends the cookie with a fresh Max-Age; a read within the touch interval sends none", async () => {
    const sessions = make(false);
    const jar = createJar();
    await request(sessions, jar, (s) => {
      s.set("n", 1);
      s.setCookieMaxAge(2 * DAY);
    });
    vi.setSystemTime(T0 + 1000);
    const read = await request(sessions, jar, (s) => s.get("n"));
    expect(maxAgeOf(read.result)).toBe("none");
    vi.setSystemTime(T0 + DAY);
    const later = await request(sessions, jar, (s) => s.get("n"));
    expect(later.value).toBe(1);
    expect(maxAgeOf(later.result)).toBe(2 * 24 * 3600);
  });

  it("never reaches past the absolute deadline", async () => {
    const sessions = make(false);
    const jar = createJar();
    await request(sessions, jar, (s) => {
      s.set("n", 1);
      s.setCookieMaxAge(ABS);
    });
    // Within the idle timeout each time: only the absolute deadline limits the cookie.
    const maxAges: Array<number | string> = [];
    for (const day of [6, 12, 18, 24]) {
      vi.setSystemTime(T0 + day * DAY);
      maxAges.push(maxAgeOf((await request(sessions, jar, (s) => s.touch())).result));
    }
    expect(maxAges).toEqual([24, 18, 12, 6].map((d) => d * 24 * 3600));
  });

  it("null gives a browser-session cookie under an app-wide persistent setting; undefined goes back to it", async () => {
    const sessions = make(true);
    const jar = createJar();
    const first = await request(sessions, jar, (s) => {
      s.set("n", 1);
      s.setCookieMaxAge(null);
    });
    expect(maxAgeOf(first.result)).toBe("session");
    // A browser-session cookie has nothing to slide: a later write re-sends nothing (a sealed
    // session's cookie is its storage, so it is re-sealed, still without Max-Age).
    vi.setSystemTime(T0 + DAY);
    expect(maxAgeOf((await request(sessions, jar, (s) => s.set("n", 2))).result)).toBe(
      mode === "sealed" ? "session" : "none",
    );
    const back = await request(sessions, jar, (s) => s.setCookieMaxAge(undefined));
    expect(maxAgeOf(back.result)).toBe(29 * 24 * 3600);
    expect((await request(sessions, jar, (s) => s.cookieMaxAge())).value).toBeUndefined();
  });

  it("a lifetime past absoluteTimeoutMs, zero, negative or fractional is a SessionDataError", async () => {
    const s = make(false).open({ secure: true });
    for (const bad of [ABS + 1, 0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => s.setCookieMaxAge(bad)).toThrow(SessionDataError);
    expect(() => s.setCookieMaxAge(ABS + 1)).toThrow(/raise absoluteTimeoutMs/);
    expect(() => s.setCookieMaxAge("1000" as unknown as number)).toThrow(SessionDataError);
  });
});

describe("per-session cookie lifetime (server-side record)", () => {
  it("is kept in the stored record, so a save() before the commit still re-sends the cookie", async () => {
    const store = createMemoryStore();
    const sessions = createSessions({
      store,
      secrets: [SECRET],
      absoluteTimeoutMs: ABS,
      idleTimeoutMs: IDLE,
    });
    const jar = createJar();
    await request(sessions, jar, (s) => s.set("n", 1));
    const saved = await request(sessions, jar, async (s) => {
      s.setCookieMaxAge(DAY);
      await s.save();
    });
    expect(maxAgeOf(saved.result)).toBe(24 * 3600);
    const keys: string[] = [];
    for await (const key of sessions.records.keys()) keys.push(key);
    expect(keys).toHaveLength(1);
    const rec = JSON.parse(Buffer.from((await sessions.records.get(keys[0]!))!).toString());
    expect(rec.cookieMaxAge).toBe(DAY);
  });
});

describe("what express-session and @fastify/session apps assign to session.cookie", () => {
  it("reads ms for maxAge, a Date for expires, null/undefined/false as a browser-session cookie", () => {
    expect(cookieLifetime(DAY, "maxAge", "x")).toBe(DAY);
    expect(cookieLifetime(DAY, "originalMaxAge", "x")).toBe(DAY);
    const ms = cookieLifetime(new Date(Date.now() + DAY), "expires", "x")!;
    expect(ms).toBeGreaterThan(DAY - 1000);
    expect(ms).toBeLessThanOrEqual(DAY);
    for (const v of [null, undefined, false]) expect(cookieLifetime(v, "maxAge", "x")).toBeNull();
  });

  it("anything else is a SessionDataError that names what the app assigned", () => {
    expect(() => cookieLifetime("1d", "maxAge", "req.session.cookie.maxAge")).toThrow(
      /req\.session\.cookie\.maxAge takes a number of ms or null; got string/,
    );
    expect(() => cookieLifetime(DAY, "expires", "req.session.cookie.expires")).toThrow(
      /req\.session\.cookie\.expires takes a Date or null; got number/,
    );
    expect(() => cookieLifetime(new Date(), "maxAge", "m")).toThrow(/got a Date/);
  });

  it("the properties read the lifetime and hand what is assigned over, read; the core's refusal names it too", () => {
    const sessions = createSessions({
      store: createMemoryStore(),
      secrets: [SECRET],
      absoluteTimeoutMs: 7 * DAY,
    });
    const session = sessions.open({ secure: true });
    let mine: number | null | undefined;
    const cookie = Object.defineProperties(
      {},
      cookieLifetimeProperties(
        () => mine ?? null,
        (ms, key) => {
          session.setCookieMaxAge(ms, `req.session.cookie.${key}`);
          mine = ms;
        },
        "req.session.cookie",
      ),
    ) as { maxAge: number | null; expires: Date | null };
    expect([cookie.maxAge, cookie.expires]).toEqual([null, null]);
    cookie.maxAge = DAY;
    expect(cookie.maxAge).toBe(DAY);
    expect(cookie.expires!.getTime()).toBeGreaterThan(Date.now() + DAY - 1000);
    expect(() => {
      cookie.maxAge = 30 * DAY;
    }).toThrow(/^req\.session\.cookie\.maxAge takes a whole number of ms from 1 to absoluteTimeoutMs/);
    expect(cookie.maxAge).toBe(DAY);
  });
});
