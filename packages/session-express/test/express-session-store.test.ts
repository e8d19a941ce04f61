import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { closedPortStore, freePort } from "@kvsession/test-helpers";
import express from "express";
import session from "express-session";
import { afterEach, describe, expect, it } from "vitest";
import { toExpressSessionStore } from "../src/express-session-store.js";
import { withoutCompareAndSet } from "./no-cas-store.js";

const servers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A request the test holds open: the route has loaded its session and waits for `release`. */
function gate() {
  let release!: () => void;
  let arrived!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (arrived = r));
  const wait = () => {
    arrived();
    return released;
  };
  return { release, reached, wait };
}

/** A real express-session app on loopback, with our store behind it. */
async function app(kv: KvStore, cookieMaxAge?: number, slow = gate()) {
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
  // Reads the session and changes nothing: express-session calls the store's touch at its end.
  a.get("/slow-read", async (req, res) => {
    const s = req.session as typeof req.session & { n?: number };
    const n = s.n;
    await slow.wait();
    res.json({ n });
  });
  a.get("/regenerate", (req, res, next) =>
    req.session.regenerate((err) => (err ? next(err) : res.json({ id: req.sessionID }))),
  );
  a.use(
    (
      err: Error & { status?: number },
      _req: express.Request,
      res: express.Response,
      _n: express.NextFunction,
    ) => {
      res
        .status(err.status ?? 500)
        .json({ error: err.name, message: err.message, cause: (err.cause as Error)?.name });
    },
  );
  const server = a.listen(0, "127.0.0.1");
  servers.push(server);
  await new Promise((r) => server.once("listening", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let cookie = "";
  const get = async (path: string, sent = cookie) => {
    const res = await fetch(base + path, { headers: sent ? { cookie: sent } : {} });
    const set = res.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0]!;
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { store, get, base, setCookie: (c: string) => (cookie = c), cookie: () => cookie };
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

  it("a store failure reaches Express as a 503 with a generic message, the store's error as its cause", async () => {
    const kv = createMemoryStore();
    const c = await app(kv, 60_000);
    await c.get("/count");
    await kv.close();
    const res = await c.get("/count");
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      error: "SessionStoreError",
      message: "Session store unavailable",
      cause: "KvClosedError",
    });
  });

  it("Express's own error page does not name an unreachable store's address", async () => {
    // A cookie express-session signed with the same secret, so the app below must load it from its store.
    const { get, cookie } = await app(createMemoryStore(), 60_000);
    await get("/count");
    const port = await freePort();
    const a = express();
    a.use(
      session({
        store: toExpressSessionStore(closedPortStore(port)),
        secret: "x".repeat(32),
        resave: false,
        saveUninitialized: false,
      }),
    );
    a.get("/", (_req, res) => res.send("ok"));
    const server = a.listen(0, "127.0.0.1");
    servers.push(server);
    await new Promise((r) => server.once("listening", r));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      headers: { cookie: cookie() },
    });
    const body = await res.text();
    expect(res.status).toBe(503);
    expect(body).toContain("Session store unavailable");
    expect(body).not.toContain(String(port));
    expect(body).not.toMatch(/\bat\s.*:\d+:\d+/);
  });
});

describe("touch: what express-session calls for a request that changed nothing", () => {
  it("a slow read-only request does not undo a change committed while it ran", async () => {
    const slow = gate();
    const c = await app(createMemoryStore(), 60_000, slow);
    await c.get("/count");
    const reading = c.get("/slow-read");
    await slow.reached;
    expect((await c.get("/count")).body.n).toBe(2);
    slow.release();
    expect((await reading).body.n).toBe(1);
    expect((await c.get("/count")).body.n).toBe(3);
  });

  it("a slow read-only request does not bring back a session a logout destroyed while it ran", async () => {
    const kv = createMemoryStore();
    const slow = gate();
    const c = await app(kv, 60_000, slow);
    await c.get("/count");
    const cookie = c.cookie();
    const reading = c.get("/slow-read", cookie);
    await slow.reached;
    await c.get("/logout");
    slow.release();
    expect((await reading).status).toBe(200);
    expect((await kv.listKeys()).keys).toEqual([]);
    expect((await c.get("/count", cookie)).body.n).toBe(1);
  });

  it.each([
    ["with compare-and-set", () => createMemoryStore()],
    ["without compare-and-set", () => withoutCompareAndSet(createMemoryStore())],
  ])("moves the stored session's expiry and keeps its bytes (%s)", async (_, make) => {
    const kv = make();
    const store = toExpressSessionStore(kv, { hashIds: false });
    const call = (fn: (cb: (err?: unknown) => void) => void) =>
      new Promise<void>((res, rej) => fn((err) => (err ? rej(err) : res())));
    const soon = { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000), path: "/" };
    await call((cb) => store.set("s", { cookie: soon, n: 2 } as never, cb));
    const before = await kv.getEntry("sess:s");
    const later = { ...soon, expires: new Date(Date.now() + 600_000) };
    await call((cb) => store.touch!("s", { cookie: later, n: 1 } as never, cb));
    const after = await kv.getEntry("sess:s");
    expect(after!.value).toEqual(before!.value);
    expect(after!.expiresAt).toBe(later.expires.getTime());
    // A session that is not stored stays absent.
    await call((cb) => store.touch!("gone", { cookie: later } as never, cb));
    expect(await kv.has("sess:gone")).toBe(false);
  });

  it("an expiry already past deletes the session (save and touch alike)", async () => {
    const kv = createMemoryStore();
    const store = toExpressSessionStore(kv, { hashIds: false });
    const call = (fn: (cb: (err?: unknown) => void) => void) =>
      new Promise<void>((res, rej) => fn((err) => (err ? rej(err) : res())));
    const live = { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000), path: "/" };
    const past = { ...live, expires: new Date(0) };
    await call((cb) => store.set("a", { cookie: live } as never, cb));
    await call((cb) => store.set("a", { cookie: past } as never, cb));
    expect(await kv.has("sess:a")).toBe(false);
    await call((cb) => store.set("b", { cookie: live } as never, cb));
    await call((cb) => store.touch!("b", { cookie: past } as never, cb));
    expect(await kv.has("sess:b")).toBe(false);
  });
});
