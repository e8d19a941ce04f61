import { createMemoryStore } from "@kvsession/kv";
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { bindUser, type KvSessionAnyOptions, kvSession } from "../src/index.js";
import { closeServers, type Reply, SECRET, serve } from "./helpers.js";

afterEach(closeServers);

const DAY = 24 * 3600_000;
type Req = express.Request & { session: Record<string, unknown> & { cookie: Record<string, unknown> } };

/** The session cookie's Max-Age in the reply: "session" for a browser-session cookie, "none" when no cookie was set. */
function maxAge(r: Reply): number | "session" | "none" {
  const line = r.setCookie.find((l) => !/Max-Age=0/.test(l));
  if (line === undefined) return "none";
  const m = /; Max-Age=(\d+)/.exec(line);
  return m ? Number(m[1]) : "session";
}

/** An express-session style app: login with an optional "remember me", a counter, a regenerate, a read. */
async function rememberApp(options: KvSessionAnyOptions) {
  const a = express();
  a.use(kvSession(options));
  a.post("/login", async (req, res) => {
    await bindUser(req, "u1");
    const s = (req as Req).session;
    if (req.query.remember === "maxAge") s.cookie.maxAge = 30 * DAY;
    if (req.query.remember === "expires") s.cookie.expires = new Date(Date.now() + 2 * DAY);
    if (req.query.remember === "originalMaxAge") s.cookie.originalMaxAge = 3 * DAY;
    if (req.query.remember === "huge") s.cookie.maxAge = 365 * DAY;
    if (req.query.remember === "negative") s.cookie.maxAge = -1;
    if (req.query.remember === "past") s.cookie.expires = new Date(0);
    if (req.query.remember === "null") s.cookie.maxAge = null;
    res.json({ maxAge: s.cookie.maxAge });
  });
  a.post("/count", (req, res) => {
    const s = (req as Req).session;
    s.n = ((s.n as number | undefined) ?? 0) + 1;
    res.json({ n: s.n, maxAge: s.cookie.maxAge, originalMaxAge: s.cookie.originalMaxAge });
  });
  a.post("/regenerate", (req, res, next) => {
    (req as Req).session.regenerate((err?: unknown) => {
      if (err) return next(err);
      (req as Req).session.fresh = true;
      res.json({ maxAge: (req as Req).session.cookie.maxAge });
    });
  });
  a.get("/read", (req, res) => {
    res.json({ maxAge: (req as Req).session.cookie.maxAge ?? "unset" });
  });
  a.use((err: Error & { status?: number }, _req: express.Request, res: express.Response, _n: unknown) => {
    res.status(err.status ?? 500).json({ name: err.name, message: err.message });
  });
  return serve(a);
}

// The absolute timeout outlasts every lifetime these tests set, so a cookie's Max-Age is its own, not the
// absolute deadline's remainder, which shrinks with each second the test takes.
const serverSide = () => ({
  store: createMemoryStore(),
  secrets: [SECRET],
  absoluteTimeoutMs: 60 * DAY,
  idleTimeoutMs: 7 * DAY,
});
const sealed = () => ({
  sealed: true as const,
  secrets: [SECRET],
  absoluteTimeoutMs: 60 * DAY,
  idleTimeoutMs: 7 * DAY,
});

describe.each([
  ["server-side", serverSide],
  ["sealed", sealed],
])("req.session.cookie.maxAge per session, as with express-session (%s)", (_, options) => {
  it("a login with remember-me gets a persistent cookie; without it, a browser-session cookie", async () => {
    const { client } = await rememberApp(options());
    const remembered = await client().request("/login?remember=maxAge", { method: "POST" });
    expect(remembered.status).toBe(200);
    expect(maxAge(remembered)).toBe(30 * 24 * 3600);
    expect(remembered.setCookie[0]).toMatch(/; Expires=[A-Z][a-z]{2}, /);
    const plain = await client().request("/login", { method: "POST" });
    expect(maxAge(plain)).toBe("session");
    expect(JSON.parse(plain.text).maxAge).toBeNull();
  });

  it("regenerate() keeps the session's lifetime, and a later write re-sends the cookie with it", async () => {
    const { client } = await rememberApp(options());
    const c = client();
    await c.request("/login?remember=maxAge", { method: "POST" });
    const regenerated = await c.request("/regenerate", { method: "POST" });
    expect(regenerated.status).toBe(200);
    expect(JSON.parse(regenerated.text).maxAge).toBe(30 * DAY);
    expect(maxAge(regenerated)).toBe(30 * 24 * 3600);
    const later = await c.request("/count", { method: "POST" });
    expect(JSON.parse(later.text)).toEqual({ n: 1, maxAge: 30 * DAY, originalMaxAge: 30 * DAY });
    expect(maxAge(later)).toBe(30 * 24 * 3600);
    // A request that changes nothing within the touch interval writes nothing and sends no cookie.
    const read = await c.request("/read");
    expect(JSON.parse(read.text).maxAge).toBe(30 * DAY);
    expect(maxAge(read)).toBe("none");
  });

  it("cookie.expires and cookie.originalMaxAge set the lifetime too", async () => {
    const { client } = await rememberApp(options());
    expect(maxAge(await client().request("/login?remember=expires", { method: "POST" }))).toBe(2 * 24 * 3600);
    expect(maxAge(await client().request("/login?remember=originalMaxAge", { method: "POST" }))).toBe(
      3 * 24 * 3600,
    );
  });

  it.each([
    ["longer than absoluteTimeoutMs", "huge", /req\.session\.cookie\.maxAge .*raise absoluteTimeoutMs/],
    ["negative", "negative", /req\.session\.cookie\.maxAge takes a whole number of ms from 1/],
    ["an expiry in the past", "past", /req\.session\.cookie\.expires takes a whole number of ms from 1/],
  ])("a lifetime %s is a SessionDataError and is not applied", async (_, remember, message) => {
    const { client } = await rememberApp(options());
    const r = await client().request(`/login?remember=${remember}`, { method: "POST" });
    expect(r.status).toBe(500);
    expect(JSON.parse(r.text).name).toBe("SessionDataError");
    expect(JSON.parse(r.text).message).toMatch(message);
    // The login before the assignment stands, with the app's browser-session cookie.
    expect(maxAge(r)).toBe("session");
  });
});

describe("req.session.cookie.maxAge = null under an app-wide cookie.maxAge", () => {
  it("makes this session's cookie a browser-session cookie while others stay persistent", async () => {
    const { client } = await rememberApp({
      store: createMemoryStore(),
      secrets: [SECRET],
      cookie: { maxAge: DAY },
    });
    expect(maxAge(await client().request("/login", { method: "POST" }))).toBe(24 * 3600);
    const c = client();
    const forgotten = await c.request("/login?remember=null", { method: "POST" });
    expect(maxAge(forgotten)).toBe("session");
    const later = await c.request("/count", { method: "POST" });
    expect(JSON.parse(later.text).maxAge).toBeNull();
    // A browser-session cookie has nothing to slide: the browser keeps the one it has.
    expect(maxAge(later)).toBe("none");
  });
});

describe("restating the lifetime the cookie has, as express-session", () => {
  it("re-sends nothing: cookie.expires = null on every request of a browser-session cookie", async () => {
    const a = express();
    a.use(kvSession({ store: createMemoryStore(), secrets: [SECRET] }));
    a.post("/", (req, res) => {
      const s = (req as Req).session;
      s.cookie.expires = null;
      s.hit = ((s.hit as number | undefined) ?? 0) + 1;
      res.json({ hit: s.hit });
    });
    const { client } = await serve(a);
    const c = client();
    expect(maxAge(await c.request("/", { method: "POST" }))).toBe("session");
    const second = await c.request("/", { method: "POST" });
    expect(JSON.parse(second.text)).toEqual({ hit: 2 });
    expect(maxAge(second)).toBe("none");
  });
});

describe("assigning req.session.cookie itself", () => {
  it("changes nothing and warns once", async () => {
    const warnings: Array<{ code?: string }> = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const a = express();
      a.use(kvSession({ store: createMemoryStore(), secrets: [SECRET] }));
      a.post("/", (req, res) => {
        const s = (req as Req).session as Record<string, unknown>;
        s.cookie = { maxAge: DAY };
        s.n = 1;
        res.json({ maxAge: (req as Req).session.cookie.maxAge });
      });
      const { client } = await serve(a);
      const r = await client().request("/", { method: "POST" });
      expect(JSON.parse(r.text)).toEqual({ maxAge: null });
      expect(maxAge(r)).toBe("session");
      await client().request("/", { method: "POST" });
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.code === "KVSESSION_COOKIE_WRITE")).toHaveLength(1);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
