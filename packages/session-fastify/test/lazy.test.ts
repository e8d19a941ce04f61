import type { AddressInfo } from "node:net";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { cookieJar, countingStore, SECRET } from "@kvsession/test-helpers";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import kvSession, { type KvSessionOptions, type LazySession } from "../src/index.js";

// This package's tests declare the default mode; an app that chose `lazy: true` declares
// `KvSessionTypes { lazy: true }` and needs none of these casts.
const lazySession = (request: FastifyRequest) => request.session as unknown as LazySession;
const lazyOptions = (o: object) => ({ ...o, lazy: true }) as unknown as KvSessionOptions;

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(store: KvStore) {
  const app = Fastify();
  apps.push(app);
  await app.register(kvSession, lazyOptions({ store, secrets: [SECRET] }));
  app.get("/count", async (request) => {
    const s = lazySession(request);
    const n = ((await s.get("n")) ?? 0) + 1;
    s.set("n", n);
    return { n };
  });
  app.get("/peek", async (request) => ({ n: (await lazySession(request).get("n")) ?? null }));
  app.get("/plain", async () => ({ ok: true }));
  app.post("/blind-set", async (request) => {
    lazySession(request).set("blind", true);
    return { ok: true };
  });
  app.post("/login", async (request) => {
    const s = lazySession(request);
    await s.regenerate(["n"]);
    s.set("user", "ada");
    return { ok: true };
  });
  app.post("/bind", async (request) => {
    const s = lazySession(request);
    await s.bindUser("ada");
    return { user: (await s.userId()) ?? null, id: s.sessionId ?? null };
  });
  app.post("/logout", async (request) => {
    await lazySession(request).destroy();
    return { ok: true };
  });
  app.get("/all", async (request) => {
    const s = lazySession(request);
    return { all: await s.all(), has: await s.has("n"), exists: await s.exists() };
  });
  app.post("/update", async (request) => {
    lazySession(request).update("n", (n) => ((n as number | undefined) ?? 0) + 10);
    return { ok: true };
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

describe("lazy: true — the promise-based API, opened on first use", () => {
  it("counts across requests with awaited get/set", async () => {
    const { url } = await start(createMemoryStore());
    const b = cookieJar();
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 1 });
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 2 });
    await b.fetch(`${url}/update`, { method: "POST" });
    expect(await (await b.fetch(`${url}/peek`)).json()).toEqual({ n: 12 });
  });

  it("does no store I/O on a route that never touches the session, even with a valid cookie", async () => {
    const { store, calls } = countingStore();
    const { url } = await start(store);
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    calls.reset();
    const res = await b.fetch(`${url}/plain`);
    expect(await res.json()).toEqual({ ok: true });
    expect(calls.total()).toBe(0);
    expect(res.headers.getSetCookie()).toEqual([]);
    // A read-only request reads once and sends no cookie back.
    const peek = await b.fetch(`${url}/peek`);
    expect(await peek.json()).toEqual({ n: 1 });
    expect(calls.byMethod).toEqual(new Map([["getVersioned", 1]]));
    expect(peek.headers.getSetCookie()).toEqual([]);
  });

  it("regenerate(fields) keeps only the listed fields; bindUser binds and sessionId follows", async () => {
    const { app, url } = await start(createMemoryStore());
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    await b.fetch(`${url}/blind-set`, { method: "POST" });
    const before = b.header();
    await b.fetch(`${url}/login`, { method: "POST" });
    expect(await (await b.fetch(`${url}/all`)).json()).toEqual({
      all: { n: 1, user: "ada" },
      has: true,
      exists: true,
    });
    expect(await (await fetch(`${url}/all`, { headers: { cookie: before } })).json()).toEqual({
      all: {},
      has: false,
      exists: false,
    });
    const bound = (await (await b.fetch(`${url}/bind`, { method: "POST" })).json()) as { id: string };
    expect(bound).toEqual({ user: "ada", id: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect((await app.sessions.listUserSessions("ada")).map((s) => s.handle)).toEqual([bound.id]);
  });

  it("a store failure in a route answers 503 with Retry-After, and the request writes nothing after it", async () => {
    const { store, calls } = countingStore();
    const { url } = await start(store);
    const b = cookieJar();
    await b.fetch(`${url}/count`);
    await store.close();
    calls.reset();
    const res = await b.fetch(`${url}/count`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.getSetCookie()).toEqual([]);
    const writes = ["set", "setIfAbsent", "compareAndSet", "delete", "setMany", "deleteMany"];
    expect([...calls.byMethod.keys()].filter((m) => writes.includes(m))).toEqual([]);
    const out = await b.fetch(`${url}/logout`, { method: "POST" });
    expect(out.status).toBe(503);
  });
});
