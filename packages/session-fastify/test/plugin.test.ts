import type { AddressInfo } from "node:net";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createSessions, SessionConfigError } from "@kvsession/session";
import { cookieJar, countingStore, SECRET } from "@kvsession/test-helpers";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import kvSession, {
  bindUser,
  coreSession,
  type KvSessionOptions,
  type SessionShape,
  sessionUserId,
} from "../src/index.js";

/** The session as untyped JavaScript sees it: what a mistake in plain JS can pass. */
const untyped = (s: object) => s as { set(key: string, value: unknown): void };

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** A real Fastify server on 127.0.0.1 whose routes use the session the @fastify/session way. */
async function start(options: KvSessionOptions, fastifyOptions = {}) {
  const app = Fastify(fastifyOptions);
  apps.push(app);
  await app.register(kvSession, options);
  app.get("/count", async (request) => {
    request.session.n = (request.session.n ?? 0) + 1;
    return { n: request.session.n };
  });
  app.get("/count-get-set", async (request) => {
    const n = (request.session.get("n") ?? 0) + 1;
    request.session.set("n", n);
    return { n };
  });
  app.get("/peek", async (request) => ({ n: request.session.n ?? null }));
  app.get("/id", async (request) => ({ id: request.session.sessionId ?? null }));
  app.get("/plain", async () => ({ ok: true }));
  app.post("/blind-set", async (request) => {
    request.session.blind = true;
    return { ok: true };
  });
  app.post("/cart", async (request) => {
    // A nested change counts, as in @fastify/session (compared as JSON at the end of the request).
    request.session.cart ??= [];
    request.session.cart.push("apple");
    return { cart: request.session.cart };
  });
  app.post("/login", async (request) => {
    await request.session.regenerate(["n"]);
    request.session.user = "ada";
    return { ok: true };
  });
  app.post("/login-cb", (request, reply) => {
    request.session.regenerate((err) => {
      if (err) return reply.send(err);
      request.session.user = "cb";
      reply.send({ ok: true });
    });
  });
  app.post("/bind", async (request) => {
    await bindUser(request, "ada", { ua: request.headers["user-agent"] ?? "" });
    return { ok: true, user: (await sessionUserId(request)) ?? null };
  });
  app.post("/logout", async (request) => {
    await request.session.destroy();
    return { session: request.session };
  });
  app.post("/logout-cb", (request, reply) => {
    request.session.destroy((err) => reply.send(err ?? { ok: true }));
  });
  app.get("/all", async (request) => ({ all: { ...request.session }, keys: Object.keys(request.session) }));
  app.post("/forget", async (request) => {
    delete request.session.n;
    return { keys: Object.keys(request.session) };
  });
  app.post("/reload", async (request) => {
    request.session.n = 1000;
    await request.session.reload();
    return { n: request.session.n ?? null };
  });
  app.post("/reload-cb", (request, reply) => {
    request.session.n = 1000;
    request.session.reload((err) => reply.send(err ?? { n: request.session.n ?? null }));
  });
  app.post("/save-then-throw", async (request) => {
    request.session.saved = "yes";
    await request.session.save();
    throw new Error("boom after save");
  });
  app.post("/save-cb-then-throw", (request, reply) => {
    request.session.saved = "cb";
    request.session.save((err) => reply.send(err ?? new Error("boom after save")));
  });
  app.get("/own-cookie", async (request, reply) => {
    reply.header("set-cookie", "theme=dark; Path=/");
    request.session.x = 1;
    return { ok: true };
  });
  app.post("/ids", async (request) => {
    const first = request.session.sessionId ?? null;
    request.session.n = 1;
    await request.session.save();
    const saved = request.session.sessionId ?? null;
    await bindUser(request, "grace");
    return { first, saved, bound: request.session.sessionId ?? null };
  });
  app.get("/flags", async (request) => {
    const before = request.session.isModified();
    request.session.n = ((request.session.n as number | undefined) ?? 0) + 1;
    const after = request.session.isModified();
    const savedBefore = request.session.isSaved();
    await request.session.save();
    return {
      before,
      after,
      savedBefore,
      saved: request.session.isSaved(),
      clean: !request.session.isModified(),
    };
  });
  app.post("/shadow", async (request) => {
    const tried: Record<string, string> = {};
    for (const [name, attempt] of [
      ["assign save", () => Object.assign(request.session, { save: 1 })],
      ["set regenerate", () => untyped(request.session).set("regenerate", 1)],
      ["assign sessionId", () => Object.assign(request.session, { sessionId: "forged" })],
      ["set __proto__", () => untyped(request.session).set("__proto__", { polluted: true })],
    ] as const) {
      try {
        attempt();
        tried[name] = "accepted";
      } catch (err) {
        tried[name] = (err as Error).message;
      }
    }
    return { tried, saveIsMethod: typeof request.session.save === "function" };
  });
  app.post("/method-named-data", async (request) => {
    // A name of the lazy API's methods is plain data here (@fastify/session users store userId so).
    request.session.userId = 42;
    request.session.flash = { info: ["hi"] };
    return { ok: true };
  });
  app.get("/method-named-data", async (request) => ({
    userId: request.session.userId ?? null,
    flash: request.session.get("flash") ?? null,
  }));
  app.post("/core-flash", async (request) => {
    coreSession(request).flash("info", "saved");
    return { ok: true };
  });
  app.get("/core-flash", async (request) => ({ info: await coreSession(request).flashes("info") }));
  app.register(async (child) => {
    child.get("/child", async (request) => ({ n: request.session.n ?? null }));
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}

describe("the @fastify/session API through a real Fastify server", () => {
  it("holds the data as properties and in get/set, counting across requests, with a HttpOnly no-store cookie", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    const r1 = await b.fetch(`${url}/count`);
    expect(await r1.json()).toEqual({ n: 1 });
    const [cookie] = r1.headers.getSetCookie();
    expect(cookie).toMatch(/^sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(r1.headers.get("cache-control")).toBe("no-store");
    expect(await (await b.fetch(`${url}/count-get-set`)).json()).toEqual({ n: 2 });
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 3 });
    expect(await (await b.fetch(`${url}/child`)).json()).toEqual({ n: 3 });
    // Another browser has its own session.
    expect(await (await cookieJar().fetch(`${url}/count`)).json()).toEqual({ n: 1 });
  });

  it("stores a nested change made in place, and a read-only request sends no cookie", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/cart`, { method: "POST" });
    expect(await (await b.fetch(`${url}/cart`, { method: "POST" })).json()).toEqual({
      cart: ["apple", "apple"],
    });
    const all = await b.fetch(`${url}/all`);
    expect(await all.json()).toEqual({ all: { cart: ["apple", "apple"] }, keys: ["cart"] });
    expect(all.headers.getSetCookie()).toEqual([]);
  });

  it("loads before the handler only when a cookie verifies: no cookie or a forged one costs no store I/O", async () => {
    const { store, calls } = countingStore();
    const { url } = await start({ store, secrets: [SECRET] });
    const none = await fetch(`${url}/plain`);
    expect(await none.json()).toEqual({ ok: true });
    const forged = await fetch(`${url}/peek`, {
      headers: { cookie: `sid=${"A".repeat(43)}.${"B".repeat(43)}` },
    });
    expect(await forged.json()).toEqual({ n: null });
    expect(calls.total()).toBe(0);
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    calls.reset();
    // A valid cookie: one read, before the handler, even on a route that ignores the session.
    const plain = await b.fetch(`${url}/plain`);
    expect(await plain.json()).toEqual({ ok: true });
    expect(calls.byMethod).toEqual(new Map([["getVersioned", 1]]));
    expect(plain.headers.getSetCookie()).toEqual([]);
  });

  it("keeps Set-Cookie headers the route set itself", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const cookies = (await fetch(`${url}/own-cookie`)).headers.getSetCookie();
    expect(cookies).toHaveLength(2);
    expect(cookies[0]).toBe("theme=dark; Path=/");
    expect(cookies[1]).toMatch(/^sid=/);
  });

  it("regenerate(fields) and regenerate(callback) give a new ID with only the listed fields; the old cookie stops working", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    await b.fetch(`${url}/cart`, { method: "POST" });
    const before = b.header();
    expect((await b.fetch(`${url}/login`, { method: "POST" })).status).toBe(200);
    expect(b.header()).not.toBe(before);
    expect(((await (await b.fetch(`${url}/all`)).json()) as { all: unknown }).all).toEqual({
      n: 1,
      user: "ada",
    });
    // The attacker who planted (or copied) the pre-login cookie has nothing.
    const old = await fetch(`${url}/all`, { headers: { cookie: before } });
    expect(((await old.json()) as { all: unknown }).all).toEqual({});
    expect(old.headers.getSetCookie()[0]).toMatch(/Max-Age=0/);
    const afterFirst = b.header();
    expect((await b.fetch(`${url}/login-cb`, { method: "POST" })).status).toBe(200);
    expect(b.header()).not.toBe(afterFirst);
    expect(((await (await b.fetch(`${url}/all`)).json()) as { all: unknown }).all).toEqual({ user: "cb" });
  });

  it("destroy() and destroy(callback) delete the session, leave request.session null, and clear the cookie", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    for (const path of ["/logout", "/logout-cb"]) {
      const b = cookieJar();
      await b.fetch(`${url}/count`);
      const stolen = b.header();
      const out = await b.fetch(`${url}${path}`, { method: "POST" });
      expect(out.status).toBe(200);
      if (path === "/logout") expect(await out.json()).toEqual({ session: null });
      expect(out.headers.getSetCookie()[0]).toMatch(/^sid=; .*Max-Age=0/);
      expect(out.headers.get("cache-control")).toBe("no-store");
      expect(b.jar.size).toBe(0);
      expect(await (await fetch(`${url}/peek`, { headers: { cookie: stolen } })).json()).toEqual({ n: null });
    }
  });

  it("delete, reload() and save() (promise and callback) behave as in @fastify/session", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    expect(await (await b.fetch(`${url}/reload`, { method: "POST" })).json()).toEqual({ n: 1 });
    expect(await (await b.fetch(`${url}/reload-cb`, { method: "POST" })).json()).toEqual({ n: 1 });
    expect(await (await b.fetch(`${url}/peek`)).json()).toEqual({ n: 1 });
    expect(await (await b.fetch(`${url}/forget`, { method: "POST" })).json()).toEqual({ keys: [] });
    expect(await (await b.fetch(`${url}/peek`)).json()).toEqual({ n: null });
    // save() wrote before the route failed: the change survives the 500.
    expect((await b.fetch(`${url}/save-then-throw`, { method: "POST" })).status).toBe(500);
    expect(((await (await b.fetch(`${url}/all`)).json()) as { all: unknown }).all).toEqual({ saved: "yes" });
    expect((await b.fetch(`${url}/save-cb-then-throw`, { method: "POST" })).status).toBe(500);
    expect(((await (await b.fetch(`${url}/all`)).json()) as { all: unknown }).all).toEqual({ saved: "cb" });
  });

  it("isModified() and isSaved() follow the properties and save()", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    expect(await (await b.fetch(`${url}/flags`)).json()).toEqual({
      before: false,
      after: true,
      savedBefore: false,
      saved: true,
      clean: true,
    });
  });

  it("refuses to let data shadow a method, or a __proto__ key, with a clear error", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const res = await fetch(`${url}/shadow`, { method: "POST" });
    expect(await res.json()).toEqual({
      tried: {
        "assign save": expect.stringMatching(/"save" is a method of request\.session/),
        "set regenerate": expect.stringMatching(/"regenerate" is a method of request\.session/),
        "assign sessionId": expect.stringMatching(/"sessionId" is a method of request\.session/),
        "set __proto__": 'cannot store session key "__proto__"',
      },
      saveIsMethod: true,
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("names that were methods of the lazy API (userId, flash) are plain data", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/method-named-data`, { method: "POST" });
    expect(await (await b.fetch(`${url}/method-named-data`)).json()).toEqual({
      userId: 42,
      flash: { info: ["hi"] },
    });
  });

  it("coreSession() gives the core's flash messages, read once", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/core-flash`, { method: "POST" });
    expect(await (await b.fetch(`${url}/core-flash`)).json()).toEqual({ info: ["saved"] });
    expect(await (await b.fetch(`${url}/core-flash`)).json()).toEqual({ info: [] });
  });

  it("bindUser() makes the session listable through fastify.sessions, typed without a cast", async () => {
    const sessions = createSessions<SessionShape>({ store: createMemoryStore(), secrets: [SECRET] });
    const { app, url } = await start({ sessions });
    expect(app.sessions).toBe(sessions);
    const a = cookieJar();
    const b = cookieJar();
    for (const jar of [a, b]) {
      await jar.fetch(`${url}/count`);
      const bound = await jar.fetch(`${url}/bind`, { method: "POST", headers: { "user-agent": "t" } });
      expect(await bound.json()).toEqual({ ok: true, user: "ada" });
    }
    const listed = await app.sessions.listUserSessions("ada");
    expect(listed).toHaveLength(2);
    expect(listed[0]!.meta).toEqual({ ua: "t" });
    // The data survives the login (bindUser keeps it).
    expect(await (await a.fetch(`${url}/peek`)).json()).toEqual({ n: 1 });
    expect(await app.sessions.revokeSession("ada", listed[0]!.handle)).toBe(true);
    expect(await app.sessions.revokeUser("ada")).toBe(1);
    expect(await (await a.fetch(`${url}/peek`)).json()).toEqual({ n: null });
    expect(await (await b.fetch(`${url}/peek`)).json()).toEqual({ n: null });
  });

  it("sessionId is the public handle listUserSessions reports: undefined for a new session until saved, new on login", async () => {
    const { app, url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const ids = (await (await fetch(`${url}/ids`, { method: "POST" })).json()) as Record<
      string,
      string | null
    >;
    expect(ids.first).toBeNull();
    expect(ids.saved).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ids.bound).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ids.bound).not.toBe(ids.saved);
    expect((await app.sessions.listUserSessions("grace")).map((s) => s.handle)).toEqual([ids.bound]);
  });

  it("sessionId is known as soon as a returning request's session is loaded", async () => {
    const { app, url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/bind`, { method: "POST" });
    const [listed] = await app.sessions.listUserSessions("ada");
    expect(await (await b.fetch(`${url}/id`)).json()).toEqual({ id: listed!.handle });
  });

  it("rejects a forged or foreign-secret cookie and starts a fresh session", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const other = await start({ store: createMemoryStore(), secrets: [`${SECRET}-other`] });
    const b = cookieJar();
    await b.fetch(`${other.url}/count`);
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 1 });
  });

  it("uses the __Host- prefix and Secure behind a TLS proxy only with trustProxy", async () => {
    const trusting = await start({ store: createMemoryStore(), secrets: [SECRET], trustProxy: true });
    const res = await fetch(`${trusting.url}/count`, { headers: { "x-forwarded-proto": "https" } });
    expect(res.headers.getSetCookie()[0]).toMatch(/^__Host-sid=.*; Secure/);
    const plain = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const res2 = await fetch(`${plain.url}/count`, { headers: { "x-forwarded-proto": "https" } });
    expect(res2.headers.getSetCookie()[0]).toMatch(/^sid=(?!.*Secure)/);
  });

  it("a hook registered before the plugin that reads request.session gets a clear error, not an empty session", async () => {
    const app = Fastify();
    apps.push(app);
    app.addHook("onRequest", async (request) => {
      void request.session;
    });
    await app.register(kvSession, { store: createMemoryStore(), secrets: [SECRET] });
    app.get("/", async () => ({ ok: true }));
    const res = await app.inject("/");
    expect(res.statusCode).toBe(500);
    expect(res.json().message).toMatch(
      /register the plugin before the plugins and hooks that use the session/,
    );
  });
});

describe("store failures go through Fastify's error path as 503 with Retry-After", () => {
  async function closedStoreApp(): Promise<{ url: string; store: KvStore; b: ReturnType<typeof cookieJar> }> {
    const store = createMemoryStore();
    const { url } = await start({ store, secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    await store.close();
    return { url, store, b };
  }

  it("a load that fails answers 503 with the store error's code and a generic message, and sends no cookie", async () => {
    const { url, b } = await closedStoreApp();
    const res = await b.fetch(`${url}/count`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toMatchObject({ code: "SESSION_STORE", message: "Session store unavailable" });
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it("a write that fails at commit (in onSend) answers 503 instead of the route's 200", async () => {
    const { url } = await closedStoreApp();
    const res = await fetch(`${url}/blind-set`, { method: "POST" });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(((await res.json()) as { code: string }).code).toBe("SESSION_STORE");
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it("a request without a session cookie still works while the store is down", async () => {
    const { url } = await closedStoreApp();
    expect((await fetch(`${url}/plain`)).status).toBe(200);
  });
});

describe("sealed mode", () => {
  it("keeps the data in an encrypted cookie with no store", async () => {
    const { url } = await start({ sealed: true, secrets: [SECRET] } as unknown as KvSessionOptions);
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 2 });
    const value = [...b.jar.values()].join("");
    expect(value).not.toMatch(/"n"/);
    expect(Buffer.from(value, "base64url").toString("latin1")).not.toMatch(/"n":/);
    const out = await b.fetch(`${url}/logout`, { method: "POST" });
    expect(out.headers.getSetCookie().every((c) => /Max-Age=0/.test(c))).toBe(true);
  });
});

describe("option validation at registration", () => {
  async function register(options: unknown): Promise<unknown> {
    const app = Fastify();
    apps.push(app);
    app.register(kvSession, options as KvSessionOptions);
    return app.ready().then(
      () => undefined,
      (err: unknown) => err,
    );
  }

  it.each([
    ["no options", undefined, /options\.store is missing/],
    ["no store", { secrets: [SECRET] }, /options\.store is missing/],
    ["no secrets", { store: createMemoryStore() }, /options\.secrets is missing/],
    ["empty secrets", { store: createMemoryStore(), secrets: [] }, /non-empty array/],
    [
      "short secret",
      { store: createMemoryStore(), secrets: ["short"] },
      /secrets\[0\] has 5 bytes; at least 32/,
    ],
    [
      "@fastify/session's `secret`",
      { store: createMemoryStore(), secret: SECRET },
      /unknown option "secret": use `secrets: \[secret\]`/,
    ],
    [
      "store with sealed",
      { store: createMemoryStore(), sealed: true, secrets: [SECRET] },
      /exclude each other/,
    ],
    [
      "store-only option in sealed mode",
      { sealed: true, secrets: [SECRET], store: undefined, namespace: "x" },
      /unknown option "namespace"/,
    ],
    ["not a core instance", { sessions: {} }, /must come from createSessions/],
    ["a URL instead of a store", { store: "redis://", secrets: [SECRET] }, /needs a @kvsession\/kv store/],
    [
      "a bad timeout",
      { store: createMemoryStore(), secrets: [SECRET], idleTimeoutMs: -1 },
      /idleTimeoutMs must be a positive/,
    ],
    [
      "a lazy that is not a boolean",
      { store: createMemoryStore(), secrets: [SECRET], lazy: "yes" },
      /lazy must be true or false/,
    ],
    [
      "bad lease timings next to a core you built",
      {
        sessions: createSessions({ store: createMemoryStore(), secrets: [SECRET] }),
        serialize: { waitMs: 0 },
      },
      /options\.serialize: serialize\.waitMs must be a positive integer/,
    ],
  ])("rejects %s", async (_label, options, message) => {
    const err = await register(options);
    expect(err).toBeInstanceOf(SessionConfigError);
    expect((err as Error).message).toMatch(message);
  });

  it("accepts the minimal store and sealed forms", async () => {
    expect(await register({ store: createMemoryStore(), secrets: [SECRET] })).toBeUndefined();
    expect(await register({ sealed: true, secrets: [SECRET] })).toBeUndefined();
  });
});
