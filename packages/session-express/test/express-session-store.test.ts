import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import express from "express";
import session from "express-session";
import { afterEach, describe, expect, it } from "vitest";
import { toExpressSessionStore } from "../src/express-session-store.js";

const servers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A real express-session app on loopback, with our store behind it. */
async function app(kv: KvStore, cookieMaxAge?: number) {
  const store = toExpressSessionStore(kv);
  const a = express();
  a.use(
    session({
      store,
      secret: "x".repeat(32),
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: cookieMaxAge },
    }),
  );
  a.get("/count", (req, res) => {
    const s = req.session as typeof req.session & { n?: number };
    s.n = (s.n ?? 0) + 1;
    res.json({ n: s.n, id: req.sessionID });
  });
  a.get("/logout", (req, res, next) =>
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))),
  );
  a.get("/regenerate", (req, res, next) =>
    req.session.regenerate((err) => (err ? next(err) : res.json({ id: req.sessionID }))),
  );
  a.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(503).json({ error: err.name });
  });
  const server = a.listen(0, "127.0.0.1");
  servers.push(server);
  await new Promise((r) => server.once("listening", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let cookie = "";
  const get = async (path: string) => {
    const res = await fetch(base + path, { headers: cookie ? { cookie } : {} });
    const set = res.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0]!;
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { store, get, setCookie: (c: string) => (cookie = c), cookie: () => cookie };
}

describe("toExpressSessionStore with the real express-session", () => {
  it("keeps a session across requests, stored under a hash of the ID", async () => {
    const kv = createMemoryStore();
    const { get } = await app(kv, 60_000);
    expect((await get("/count")).body.n).toBe(1);
    const second = await get("/count");
    expect(second.body.n).toBe(2);
    const keys = (await kv.listKeys()).keys;
    const sid = String(second.body.id);
    expect(keys).toEqual([`sess:${createHash("sha256").update(sid).digest("base64url")}`]);
    expect(keys.join()).not.toContain(sid);
  });

  it("sets the store TTL from the cookie's expiry", async () => {
    const kv = createMemoryStore();
    const { get } = await app(kv, 60_000);
    await get("/count");
    const [k] = (await kv.listKeys()).keys;
    const entry = await kv.getEntry(k!);
    expect(entry!.expiresAt).toBeGreaterThan(Date.now() + 50_000);
    expect(entry!.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it("destroys on logout, so a replayed cookie gets a fresh session", async () => {
    const kv = createMemoryStore();
    const c = await app(kv, 60_000);
    await c.get("/count");
    await c.get("/count");
    const old = c.cookie();
    await c.get("/logout");
    expect((await kv.listKeys()).keys).toEqual([]);
    c.setCookie(old);
    expect((await c.get("/count")).body.n).toBe(1);
  });

  it("regenerates: the old ID's record is gone", async () => {
    const kv = createMemoryStore();
    const c = await app(kv, 60_000);
    const first = await c.get("/count");
    const regen = await c.get("/regenerate");
    expect(regen.body.id).not.toBe(first.body.id);
    const hashed = `sess:${createHash("sha256").update(String(first.body.id)).digest("base64url")}`;
    expect(await kv.has(hashed)).toBe(false);
  });

  it("answers all, length and clear", async () => {
    const kv = createMemoryStore();
    const store = toExpressSessionStore(kv);
    const cookie = { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000), path: "/" };
    const call = <T>(fn: (cb: (err?: unknown, v?: T) => void) => void) =>
      new Promise<T>((res, rej) => fn((err, v) => (err ? rej(err) : res(v as T))));
    await call((cb) => store.set("a", { cookie } as never, cb));
    await call((cb) => store.set("b", { cookie } as never, cb));
    expect(await call<number>((cb) => store.length!(cb))).toBe(2);
    expect(
      Object.keys((await call<Record<string, unknown>>((cb) => store.all!(cb as never))) ?? {}),
    ).toHaveLength(2);
    await call((cb) => store.clear!(cb));
    expect(await call<number>((cb) => store.length!(cb))).toBe(0);
  });

  it("drops prototype-polluting keys found in stored data", async () => {
    const kv = createMemoryStore();
    const store = toExpressSessionStore(kv, { hashIds: false });
    await kv.set("sess:evil", new TextEncoder().encode('{"cookie":{},"__proto__":{"admin":true}}'));
    const got = await new Promise<Record<string, unknown>>((res) =>
      store.get("evil", (_e, v) => res(v as never)),
    );
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect((got as { admin?: boolean }).admin).toBeUndefined();
  });

  it("turns a store failure into an error on Express's error path, and the app keeps serving", async () => {
    const kv = createMemoryStore();
    const c = await app(kv, 60_000);
    await c.get("/count");
    await kv.close();
    const res = await c.get("/count");
    expect(res.status).toBe(503);
    expect(res.body.error).toBe("KvClosedError");
  });
});
