import { createMemoryStore } from "@kvsession/kv";
import { createSessions, SessionConfigError } from "@kvsession/session";
import express from "express";
import expressSession from "express-session";
import { afterEach, describe, expect, it } from "vitest";
import { type KvSessionAnyOptions, type KvSessionOptions, kvSession } from "../src/index.js";
import { closeServers, SECRET, serve } from "./helpers.js";

afterEach(closeServers);

type Req = express.Request & { session: Record<string, unknown> };

/** An app with the middleware app-wide and a counter route; Express trusts loopback proxies. */
async function counterApp(options: KvSessionAnyOptions) {
  const a = express();
  a.set("trust proxy", "loopback");
  const session = kvSession(options);
  a.use(session);
  a.get("/count", (req, res) => {
    const s = (req as Req).session;
    s.n = ((s.n as number | undefined) ?? 0) + 1;
    res.json({ n: s.n, cookie: { ...s.cookie } });
  });
  return { ...(await serve(a)), session };
}

const maxAgeOf = (setCookie: string) => Number(/Max-Age=(\d+)/.exec(setCookie)?.[1]);

/** The expiry of the one stored session record, as the store holds it. */
async function recordExpiry(sessions: { records: ReturnType<typeof createMemoryStore> }) {
  const { entries } = await sessions.records.listEntries();
  expect(entries).toHaveLength(1);
  return entries[0]!.expiresAt!;
}

describe("express-session options with a safe meaning are honoured", () => {
  it("name names the cookie", async () => {
    const { client } = await counterApp({ store: createMemoryStore(), secrets: [SECRET], name: "app.sid" });
    const r = await client().request("/count");
    expect(r.setCookie[0]).toMatch(/^app\.sid=[A-Za-z0-9_-]{43}\./);
  });

  it("cookie.maxAge: a persistent cookie, and the session ends that long after its creation", async () => {
    const { client, session } = await counterApp({
      store: createMemoryStore(),
      secrets: [SECRET],
      cookie: { maxAge: 3_600_000 },
    });
    const before = Date.now();
    const r = await client().request("/count");
    const after = Date.now();
    const secs = maxAgeOf(r.setCookie[0]!);
    expect(secs).toBeGreaterThan(3_500);
    expect(secs).toBeLessThanOrEqual(3_600);
    expect(r.setCookie[0]).toMatch(/; Expires=/);
    // req.session.cookie reports the configured lifetime, as express-session does.
    expect(JSON.parse(r.text).cookie).toMatchObject({ originalMaxAge: 3_600_000, maxAge: 3_600_000 });
    // The store keeps the record no longer than the cookie lives (the idle timeout may end it sooner).
    expect(await recordExpiry(session.sessions as never)).toBeLessThanOrEqual(after + 3_600_000);
    expect(await recordExpiry(session.sessions as never)).toBeGreaterThan(before);
  });

  it("a cookie.maxAge shorter than the default idle timeout: the session ends that long after its creation", async () => {
    // express-session apps often use a minute or so; that must start, and the idle timeout follows it.
    const { client, session } = await counterApp({
      store: createMemoryStore(),
      secrets: [SECRET],
      cookie: { maxAge: 60_000 },
    });
    const before = Date.now();
    const r = await client().request("/count");
    const after = Date.now();
    expect(maxAgeOf(r.setCookie[0]!)).toBeLessThanOrEqual(60);
    expect(maxAgeOf(r.setCookie[0]!)).toBeGreaterThan(50);
    expect(await recordExpiry(session.sessions as never)).toBeLessThanOrEqual(after + 60_000);
    expect(await recordExpiry(session.sessions as never)).toBeGreaterThan(before);
  });

  it("cookie.maxAge with rolling: true: the session ends that long after its last request", async () => {
    const { client, session } = await counterApp({
      store: createMemoryStore(),
      secrets: [SECRET],
      rolling: true,
      cookie: { maxAge: 600_000 },
      touchIntervalMs: 0,
    });
    const c = client();
    const first = await c.request("/count");
    // The cookie lives as long as the session can (its absolute lifetime); the server ends it when idle.
    expect(maxAgeOf(first.setCookie[0]!)).toBeGreaterThan(600);
    const before = Date.now();
    // The server slides the session's end; the cookie is not re-sent to do it.
    expect((await c.request("/count")).setCookie).toEqual([]);
    const after = Date.now();
    const expiry = await recordExpiry(session.sessions as never);
    expect(expiry).toBeGreaterThanOrEqual(before + 600_000);
    expect(expiry).toBeLessThanOrEqual(after + 600_000);
  });

  it("resave: false, saveUninitialized: false, unset: 'keep', rolling: false are what happens anyway", async () => {
    const { client } = await counterApp({
      store: createMemoryStore(),
      secrets: [SECRET],
      resave: false,
      saveUninitialized: false,
      unset: "keep",
      rolling: false,
    });
    expect(JSON.parse((await client().request("/count")).text).n).toBe(1);
  });

  it("cookie.sameSite in express-session's spellings", async () => {
    const cases: Array<[NonNullable<KvSessionOptions & { cookie?: unknown }>["cookie"], RegExp, RegExp]> = [
      [{ sameSite: "strict" }, /SameSite=Strict/, /SameSite=Strict/],
      [{ sameSite: true }, /SameSite=Strict/, /SameSite=Strict/],
      [{ sameSite: "lax" }, /SameSite=Lax/, /SameSite=Lax/],
      // "auto": None over HTTPS, Lax over HTTP, as express-session does.
      [{ sameSite: "auto" }, /SameSite=Lax/, /SameSite=None/],
    ];
    for (const [cookie, overHttp, overHttps] of cases) {
      const { client } = await counterApp({ store: createMemoryStore(), secrets: [SECRET], cookie } as never);
      expect((await client().request("/count")).setCookie[0]).toMatch(overHttp);
      const https = await client().request("/count", { headers: { "x-forwarded-proto": "https" } });
      expect(https.setCookie[0]).toMatch(overHttps);
    }
  });

  it("sealed: true keeps the session in the cookie, with no store", async () => {
    const { client, session } = await counterApp({ sealed: true, secrets: [SECRET] });
    const c = client();
    await c.request("/count");
    expect(JSON.parse((await c.request("/count")).text).n).toBe(2);
    expect(() => session.serialize()).toThrow(SessionConfigError);
  });

  it("a core built elsewhere ({ sessions }) is used as it is", async () => {
    const store = createMemoryStore();
    const sessions = createSessions({ store, secrets: [SECRET] });
    const { client, session } = await counterApp({ sessions });
    const c = client();
    await c.request("/count");
    expect(JSON.parse((await c.request("/count")).text).n).toBe(2);
    expect(session.sessions).toBe(sessions);
    expect((await store.listKeys()).keys).toHaveLength(1);
  });
});

describe("every other option is refused at start-up, with what to write instead", () => {
  const base = { store: createMemoryStore(), secrets: [SECRET] };
  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    ["genid", { genid: () => "x" }, /256 random bits/],
    ["resave: true", { resave: true }, /only the keys it changed/],
    ["saveUninitialized: true", { saveUninitialized: true }, /stored only once something is set/],
    ["unset: destroy", { unset: "destroy" }, /req\.session\.destroy\(\)/],
    ["proxy", { proxy: true }, /trust proxy/],
    ["key", { key: "sid" }, /use `name`/],
    ["cookie.expires", { cookie: { expires: new Date(Date.now() + 1000) } }, /cookie\.maxAge/],
    ["cookie.httpOnly: false", { cookie: { httpOnly: false } }, /always HttpOnly/],
    ["cookie.sameSite: false", { cookie: { sameSite: false } }, /always carries SameSite/],
    ["cookie.partitioned", { cookie: { partitioned: true } }, /first-party/],
    ["cookie.maxAge that is not a number", { cookie: { maxAge: "1h" } }, /positive integer/],
    [
      "cookie.maxAge and absoluteTimeoutMs",
      { cookie: { maxAge: 60_000 }, absoluteTimeoutMs: 120_000 },
      /keep one/,
    ],
    ["name and cookie.name", { name: "a", cookie: { name: "b" } }, /keep one/],
    ["secret (the core's hint)", { secret: SECRET }, /secrets: \[secret\]/],
    ["a misspelt option (the core's check)", { idleTimeout: 1000 }, /unknown option "idleTimeout"/],
  ];
  it.each(refused)("%s", (_, extra, hint) => {
    expect(() => kvSession({ ...base, ...extra } as never)).toThrow(SessionConfigError);
    expect(() => kvSession({ ...base, ...extra } as never)).toThrow(hint);
  });

  it("an express-session Store (MemoryStore, connect-redis…) instead of a kvsession driver", () => {
    const store = new expressSession.MemoryStore();
    expect(() => kvSession({ store, secrets: [SECRET] } as never)).toThrow(/toExpressSessionStore/);
  });

  it("a cookie.maxAge the core's timeouts cannot take says which option it came from", () => {
    // With rolling, thirteen hours become the idle timeout, longer than the default absolute one.
    expect(() => kvSession({ ...base, rolling: true, cookie: { maxAge: 13 * 3_600_000 } })).toThrow(
      /cookie\.maxAge with rolling: true became idleTimeoutMs/,
    );
    expect(() =>
      kvSession({
        ...base,
        rolling: true,
        cookie: { maxAge: 13 * 3_600_000 },
        absoluteTimeoutMs: 86_400_000,
      }),
    ).not.toThrow();
    // An idle timeout the app set is never changed behind its back.
    expect(() => kvSession({ ...base, cookie: { maxAge: 60_000 }, idleTimeoutMs: 120_000 })).toThrow(
      /cookie\.maxAge became absoluteTimeoutMs/,
    );
  });
});
