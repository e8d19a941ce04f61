import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createSessions, SessionConfigError, SessionStoreError } from "@kvsession/session";
import { cookieJar, countingStore, SECRET } from "@kvsession/test-helpers";
import { Hono } from "hono";
import { afterEach, describe, expect, it } from "vitest";
import { type HonoSessionOptions, type SessionVariables, session } from "../src/index.js";

type Data = { n: number; user: string; blind: boolean };

function makeApp(options: HonoSessionOptions<Data>) {
  const app = new Hono<{ Variables: SessionVariables<Data> }>();
  app.use(session<Data>(options));
  app.get("/count", async (c) => {
    const s = c.get("session");
    const n = ((await s.get("n")) ?? 0) + 1;
    s.set("n", n);
    return c.json({ n });
  });
  app.get("/peek", async (c) => c.json({ n: (await c.get("session").get("n")) ?? null }));
  app.get("/plain", (c) => c.json({ ok: true }));
  app.post("/blind-set", (c) => {
    c.get("session").set("blind", true);
    return c.json({ ok: true });
  });
  app.post("/login", async (c) => {
    await c.get("session").bindUser("ada", { ua: c.req.header("user-agent") ?? "" });
    // Response.redirect() has immutable headers: the middleware must still add the cookie.
    return Response.redirect("http://127.0.0.1/home", 303);
  });
  app.post("/logout", async (c) => {
    await c.get("session").destroy();
    return c.json({ ok: true });
  });
  app.get("/own-cookie", (c) => {
    c.header("set-cookie", "theme=dark; Path=/");
    c.get("session").set("n", 1);
    return c.json({ ok: true });
  });
  return app;
}

/** A signed session cookie for `secret`, made by a core on a store of its own. */
async function validCookieFor(secret: string): Promise<string> {
  const s = createSessions({ store: createMemoryStore(), secrets: [secret] }).open({ secure: false });
  s.set("n", 1);
  return (await s.commit()).setCookie[0]!.split(";")[0]!;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function listen(app: Hono<never> | Hono<{ Variables: SessionVariables<Data> }>) {
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("through app.request() and app.fetch() (any Web-standard runtime)", () => {
  it("counts across requests with the cookie it issues", async () => {
    const app = makeApp({ store: createMemoryStore(), secrets: [SECRET] });
    const r1 = await app.request("/count");
    expect(await r1.json()).toEqual({ n: 1 });
    const [cookie] = r1.headers.getSetCookie();
    expect(cookie).toMatch(/^sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(r1.headers.get("cache-control")).toBe("no-store");
    const r2 = await app.request("/count", { headers: { cookie: cookie!.split(";")[0]! } });
    expect(await r2.json()).toEqual({ n: 2 });
    expect(r2.headers.getSetCookie()).toEqual([]);
  });

  it("reads `secure` from the request URL: https gets a __Host- Secure cookie", async () => {
    const app = makeApp({ store: createMemoryStore(), secrets: [SECRET] });
    const res = await app.fetch(new Request("https://app.example/count"));
    expect(res.headers.getSetCookie()[0]).toMatch(/^__Host-sid=.*; Secure; SameSite=Lax$/);
  });

  it("believes X-Forwarded-Proto only with trustProxy", async () => {
    const trusting = makeApp({ store: createMemoryStore(), secrets: [SECRET], trustProxy: true });
    const headers = { "x-forwarded-proto": "https" };
    expect((await trusting.request("/count", { headers })).headers.getSetCookie()[0]).toMatch(
      /^__Host-sid=.*Secure/,
    );
    const plain = makeApp({ store: createMemoryStore(), secrets: [SECRET] });
    expect((await plain.request("/count", { headers })).headers.getSetCookie()[0]).toMatch(
      /^sid=(?!.*Secure)/,
    );
  });

  it("keeps the route's own Set-Cookie and adds the session's after it", async () => {
    const app = makeApp({ store: createMemoryStore(), secrets: [SECRET] });
    const cookies = (await app.request("/own-cookie")).headers.getSetCookie();
    expect(cookies).toHaveLength(2);
    expect(cookies[0]).toBe("theme=dark; Path=/");
    expect(cookies[1]).toMatch(/^sid=/);
  });

  it("works in sealed mode with no store", async () => {
    const app = makeApp({ sealed: true, secrets: [SECRET] });
    const r1 = await app.request("/count");
    const pair = r1.headers.getSetCookie()[0]!.split(";")[0]!;
    expect(await (await app.request("/count", { headers: { cookie: pair } })).json()).toEqual({ n: 2 });
  });

  it.each([
    ["no store", { secrets: [SECRET] }, /options\.store is missing/],
    ["no secrets", { store: createMemoryStore() }, /options\.secrets is missing/],
    ["short secret", { store: createMemoryStore(), secrets: ["short"] }, /at least 32/],
    [
      "store and sealed",
      { store: createMemoryStore(), sealed: true, secrets: [SECRET] },
      /exclude each other/,
    ],
    ["not a core", { sessions: {} }, /must come from createSessions/],
  ])("rejects bad options when the middleware is created: %s", (_label, options, message) => {
    expect(() => session(options as HonoSessionOptions)).toThrow(SessionConfigError);
    expect(() => session(options as HonoSessionOptions)).toThrow(message);
  });
});

describe("through a real @hono/node-server", () => {
  it("counts, and does no store I/O on a route that never touches the session", async () => {
    const { store, calls } = countingStore();
    const url = await listen(makeApp({ store, secrets: [SECRET] }));
    const b = cookieJar();
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 1 });
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 2 });
    calls.reset();
    const res = await b.fetch(`${url}/plain`);
    expect(await res.json()).toEqual({ ok: true });
    expect(calls.total()).toBe(0);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(res.headers.get("cache-control")).toBeNull();
  });

  it("login regenerates the ID (also on a redirect response); the old cookie no longer works", async () => {
    const sessions = createSessions<Data>({ store: createMemoryStore(), secrets: [SECRET] });
    const url = await listen(makeApp({ sessions }));
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    const before = b.header();
    const login = await b.fetch(`${url}/login`, { method: "POST" });
    expect(login.status).toBe(303);
    expect(login.headers.getSetCookie()).toHaveLength(1);
    expect(b.header()).not.toBe(before);
    expect(await (await b.fetch(`${url}/peek`)).json()).toEqual({ n: 1 });
    expect(await (await fetch(`${url}/peek`, { headers: { cookie: before } })).json()).toEqual({ n: null });
    expect(await sessions.listUserSessions("ada")).toHaveLength(1);
  });

  it("c.get('session') is the core's object as the core made it: no method replaced per request", async () => {
    const app = makeApp({ store: createMemoryStore(), secrets: [SECRET] });
    app.get("/own", (c) => c.json(Object.getOwnPropertyNames(c.get("session"))));
    const own = (await (await app.request("/own")).json()) as string[];
    expect(
      own.filter((name) => ["get", "all", "save", "regenerate", "destroy", "exists"].includes(name)),
    ).toEqual([]);
  });

  it("c.get('session') is the core's own object, so listUserSessions recognises the current one", async () => {
    const sessions = createSessions<Data>({ store: createMemoryStore(), secrets: [SECRET] });
    const app = makeApp({ sessions });
    app.get("/mine", async (c) => {
      const user = await c.get("session").userId();
      const list = user ? await sessions.listUserSessions(user, { current: c.get("session") }) : [];
      return c.json(list.map((s) => s.current));
    });
    const url = await listen(app);
    const a = cookieJar();
    const b = cookieJar();
    await a.fetch(`${url}/login`, { method: "POST" });
    await b.fetch(`${url}/login`, { method: "POST" });
    expect(((await (await a.fetch(`${url}/mine`)).json()) as boolean[]).sort()).toEqual([false, true]);
  });

  it("keeps its cookie when an outer middleware edits headers afterwards", async () => {
    const app = new Hono<{ Variables: SessionVariables<Data> }>();
    app.use(async (c, next) => {
      await next();
      c.header("x-frame-options", "DENY");
    });
    app.use(session<Data>({ store: createMemoryStore(), secrets: [SECRET] }));
    app.get("/", (c) => {
      c.get("session").set("n", 1);
      return c.html("<p>hi</p>");
    });
    const url = await listen(app);
    const res = await fetch(`${url}/`);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.getSetCookie()[0]).toMatch(/^sid=/);
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("logout destroys the session and clears the cookie", async () => {
    const url = await listen(makeApp({ store: createMemoryStore(), secrets: [SECRET] }));
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    const stolen = b.header();
    const out = await b.fetch(`${url}/logout`, { method: "POST" });
    expect(out.headers.getSetCookie()[0]).toMatch(/^sid=; .*Max-Age=0/);
    expect(b.jar.size).toBe(0);
    expect(await (await fetch(`${url}/peek`, { headers: { cookie: stolen } })).json()).toEqual({ n: null });
  });
});

describe("store failures answer 503 through Hono's error handler", () => {
  async function downApp(): Promise<{ url: string; b: ReturnType<typeof cookieJar>; store: KvStore }> {
    const store = createMemoryStore();
    const url = await listen(makeApp({ store, secrets: [SECRET] }));
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    await store.close();
    return { url, b, store };
  }

  it("a failed read in the handler, with Retry-After and a generic body", async () => {
    const { url, b } = await downApp();
    const res = await b.fetch(`${url}/count`);
    expect([res.status, res.headers.get("retry-after"), await res.text()]).toEqual([
      503,
      "1",
      "Session store unavailable",
    ]);
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it("an app's onError that answers a retryable session error with a 500 is turned into the 503", async () => {
    const store = createMemoryStore();
    const app = makeApp({ store, secrets: [SECRET] });
    app.onError((_err, c) => c.text("oops", 500));
    await store.close();
    const res = await app.request("/count", { headers: { cookie: await validCookieFor(SECRET) } });
    expect([res.status, res.headers.get("retry-after"), await res.text()]).toEqual([
      503,
      "1",
      "Session store unavailable",
    ]);
  });

  it("a failed write at commit, after the handler answered 200", async () => {
    const { url } = await downApp();
    const res = await fetch(`${url}/blind-set`, { method: "POST" });
    expect(res.status).toBe(503);
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it("an app's onError still sees the SessionStoreError itself, and its own status stands", async () => {
    const store = createMemoryStore();
    const app = makeApp({ store, secrets: [SECRET] });
    app.onError((err, c) => c.json({ name: err.name, store: err instanceof SessionStoreError }, 502));
    await store.close();
    const res = await app.request("/count", { headers: { cookie: await validCookieFor(SECRET) } });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ name: "SessionStoreError", store: true });
  });

  it("untouched routes keep working while the store is down", async () => {
    const { url, b } = await downApp();
    expect((await b.fetch(`${url}/plain`)).status).toBe(200);
  });
});
