import type { AddressInfo } from "node:net";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createSessions, SessionConfigError } from "@kvsession/session";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import kvSession, { type KvSessionOptions } from "../src/index.js";
import { cookieJar, countingStore, SECRET } from "./helpers.js";

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** A real Fastify server on 127.0.0.1 with the routes the tests use. */
async function start(options: KvSessionOptions, fastifyOptions = {}) {
  const app = Fastify(fastifyOptions);
  apps.push(app);
  await app.register(kvSession, options);
  app.get("/count", async (request) => {
    const n = ((await request.session.get("n")) as number | undefined) ?? 0;
    request.session.set("n", n + 1);
    return { n: n + 1 };
  });
  app.get("/peek", async (request) => ({ n: (await request.session.get("n")) ?? null }));
  app.get("/plain", async () => ({ ok: true }));
  app.post("/blind-set", async (request) => {
    request.session.set("blind", true);
    return { ok: true };
  });
  app.post("/login", async (request) => {
    await request.session.regenerate(["n"]);
    request.session.set("user", "ada");
    return { ok: true };
  });
  app.post("/bind", async (request) => {
    await request.session.bindUser("ada", { ua: request.headers["user-agent"] ?? "" });
    return { ok: true };
  });
  app.post("/logout", async (request) => {
    await request.session.destroy();
    return { ok: true };
  });
  app.get("/all", async (request) => ({
    all: await request.session.all(),
    has: await request.session.has("n"),
    exists: await request.session.exists(),
  }));
  app.post("/forget", async (request) => {
    request.session.delete("n");
    return { all: await request.session.all() };
  });
  app.post("/reload", async (request) => {
    request.session.set("n", 1000);
    await request.session.reload();
    return { n: (await request.session.get("n")) ?? null };
  });
  app.post("/save-then-throw", async (request) => {
    request.session.set("saved", "yes");
    await request.session.save();
    throw new Error("boom after save");
  });
  app.get("/own-cookie", async (request, reply) => {
    reply.header("set-cookie", "theme=dark; Path=/");
    request.session.set("x", 1);
    return { ok: true };
  });
  app.post("/ids", async (request) => {
    const first = request.session.sessionId ?? null;
    request.session.set("n", 1);
    await request.session.save();
    const saved = request.session.sessionId ?? null;
    await request.session.bindUser("grace");
    return { first, saved, bound: request.session.sessionId ?? null };
  });
  app.register(async (child) => {
    child.get("/child", async (request) => ({ n: (await request.session.get("n")) ?? null }));
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}

describe("server-side sessions through a real Fastify server", () => {
  it("issues a HttpOnly SameSite cookie with Cache-Control: no-store, and counts across requests", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    const r1 = await b.fetch(`${url}/count`);
    expect(await r1.json()).toEqual({ n: 1 });
    const [cookie] = r1.headers.getSetCookie();
    expect(cookie).toMatch(/^sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; /);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);
    expect(r1.headers.get("cache-control")).toBe("no-store");
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 2 });
    expect(await (await b.fetch(`${url}/child`)).json()).toEqual({ n: 2 });
    // Another browser has its own session.
    expect(await (await cookieJar().fetch(`${url}/count`)).json()).toEqual({ n: 1 });
  });

  it("does no store I/O on a route that never touches the session, even with a valid cookie", async () => {
    const { store, calls } = countingStore();
    const { url } = await start({ store, secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    const before = calls();
    expect(before).toBeGreaterThan(0);
    const res = await b.fetch(`${url}/plain`);
    expect(await res.json()).toEqual({ ok: true });
    expect(calls()).toBe(before);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(res.headers.get("cache-control")).toBeNull();
    // A read-only request reads once and sends no cookie back.
    const peek = await b.fetch(`${url}/peek`);
    expect(await peek.json()).toEqual({ n: 1 });
    expect(calls()).toBeGreaterThan(before);
    expect(peek.headers.getSetCookie()).toEqual([]);
  });

  it("keeps Set-Cookie headers the route set itself", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const res = await fetch(`${url}/own-cookie`);
    const cookies = res.headers.getSetCookie();
    expect(cookies).toHaveLength(2);
    expect(cookies[0]).toBe("theme=dark; Path=/");
    expect(cookies[1]).toMatch(/^sid=/);
  });

  it("regenerate() issues a new ID, keeps only the listed fields, and the pre-login cookie stops working", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    await b.fetch(`${url}/count`);
    const before = b.header();
    const login = await b.fetch(`${url}/login`, { method: "POST" });
    expect(login.status).toBe(200);
    expect(b.header()).not.toBe(before);
    expect(await (await b.fetch(`${url}/all`)).json()).toEqual({
      all: { n: 2, user: "ada" },
      has: true,
      exists: true,
    });
    // The attacker who planted (or copied) the pre-login cookie has nothing.
    const old = await fetch(`${url}/all`, { headers: { cookie: before } });
    expect(await old.json()).toEqual({ all: {}, has: false, exists: false });
    expect(old.headers.getSetCookie()[0]).toMatch(/Max-Age=0/);
  });

  it("bindUser() makes the session listable through fastify.sessions", async () => {
    const sessions = createSessions({ store: createMemoryStore(), secrets: [SECRET] });
    const { app, url } = await start({ sessions });
    expect(app.sessions).toBe(sessions);
    const a = cookieJar();
    const b = cookieJar();
    for (const jar of [a, b]) {
      await jar.fetch(`${url}/count`);
      expect(
        (await jar.fetch(`${url}/bind`, { method: "POST", headers: { "user-agent": "t" } })).status,
      ).toBe(200);
    }
    const listed = await sessions.listUserSessions("ada");
    expect(listed).toHaveLength(2);
    expect(listed[0]!.meta).toEqual({ ua: "t" });
    expect(await sessions.revokeUser("ada")).toBe(2);
    expect(await (await a.fetch(`${url}/peek`)).json()).toEqual({ n: null });
  });

  it("sessionId is the public handle listUserSessions reports, and changes on login", async () => {
    const { app, url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const ids = (await (await fetch(`${url}/ids`, { method: "POST" })).json()) as Record<
      string,
      string | null
    >;
    expect(ids.first).toBeNull();
    expect(ids.saved).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ids.bound).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ids.bound).not.toBe(ids.saved);
    const sessions = app.sessions as ReturnType<typeof createSessions>;
    expect((await sessions.listUserSessions("grace")).map((s) => s.handle)).toEqual([ids.bound]);
  });

  it("destroy() deletes the session and clears the cookie; a replayed cookie finds nothing", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    const stolen = b.header();
    const out = await b.fetch(`${url}/logout`, { method: "POST" });
    expect(out.headers.getSetCookie()[0]).toMatch(/^sid=; .*Max-Age=0/);
    expect(out.headers.get("cache-control")).toBe("no-store");
    expect(b.jar.size).toBe(0);
    expect(await (await fetch(`${url}/peek`, { headers: { cookie: stolen } })).json()).toEqual({ n: null });
  });

  it("delete(), reload() and save() behave as documented", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    expect(await (await b.fetch(`${url}/reload`, { method: "POST" })).json()).toEqual({ n: 1 });
    expect(await (await b.fetch(`${url}/peek`)).json()).toEqual({ n: 1 });
    expect(await (await b.fetch(`${url}/forget`, { method: "POST" })).json()).toEqual({ all: {} });
    expect(await (await b.fetch(`${url}/peek`)).json()).toEqual({ n: null });
    // save() wrote before the route failed: the change survives the 500.
    const failed = await b.fetch(`${url}/save-then-throw`, { method: "POST" });
    expect(failed.status).toBe(500);
    expect(((await (await b.fetch(`${url}/all`)).json()) as { all: unknown }).all).toEqual({ saved: "yes" });
  });

  it("rejects a forged or foreign-secret cookie and starts a fresh session", async () => {
    const { url } = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const other = await start({ store: createMemoryStore(), secrets: [`${SECRET}-other`] });
    const b = cookieJar();
    await b.fetch(`${other.url}/count`);
    const res = await b.fetch(`${url}/count`);
    expect(await res.json()).toEqual({ n: 1 });
  });

  it("uses the __Host- prefix and Secure behind a TLS proxy only with trustProxy", async () => {
    const trusting = await start({ store: createMemoryStore(), secrets: [SECRET], trustProxy: true });
    const res = await fetch(`${trusting.url}/count`, { headers: { "x-forwarded-proto": "https" } });
    expect(res.headers.getSetCookie()[0]).toMatch(/^__Host-sid=.*; Secure/);
    const plain = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const res2 = await fetch(`${plain.url}/count`, { headers: { "x-forwarded-proto": "https" } });
    expect(res2.headers.getSetCookie()[0]).toMatch(/^sid=/);
    expect(res2.headers.getSetCookie()[0]).not.toMatch(/Secure/);
  });
});

describe("store failures go through Fastify's error path as 503", () => {
  async function closedStoreApp(): Promise<{ url: string; store: KvStore; b: ReturnType<typeof cookieJar> }> {
    const store = createMemoryStore();
    const { url } = await start({ store, secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    await store.close();
    return { url, store, b };
  }

  it("a read that fails answers 503 with the store error's code and a generic message, and sends no cookie", async () => {
    const { url, b } = await closedStoreApp();
    const res = await b.fetch(`${url}/count`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { message: string; code: string };
    expect(body.code).toBe("SESSION_STORE");
    expect(body.message).toBe("Session store unavailable");
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it("a write that fails at commit (in onSend) answers 503 instead of the route's 200", async () => {
    const { url } = await closedStoreApp();
    const res = await fetch(`${url}/blind-set`, { method: "POST" });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe("SESSION_STORE");
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it("a route that never touches the session still works while the store is down", async () => {
    const { url, b } = await closedStoreApp();
    const res = await b.fetch(`${url}/plain`);
    expect(res.status).toBe(200);
  });
});

describe("sealed mode", () => {
  it("keeps the data in an encrypted cookie with no store", async () => {
    const { url } = await start({ sealed: true, secrets: [SECRET] });
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
  ])("rejects %s", async (_label, options, message) => {
    const err = await register(options);
    expect(err).toBeInstanceOf(SessionConfigError);
    expect((err as Error).message).toMatch(message);
  });

  it("accepts the minimal store and sealed forms, and decorates app-wide", async () => {
    expect(await register({ store: createMemoryStore(), secrets: [SECRET] })).toBeUndefined();
    expect(await register({ sealed: true, secrets: [SECRET] })).toBeUndefined();
  });
});
