import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { hashId } from "@kvsession/session";
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { type KvSessionOptions, kvSession } from "../src/index.js";
import { closeServers, SECRET, serve } from "./helpers.js";

afterEach(closeServers);

type Session = Record<string, unknown> & {
  id: string | undefined;
  save(cb?: (err?: unknown) => void): Promise<void>;
  reload(cb?: (err?: unknown) => void): Promise<void>;
  destroy(cb?: (err?: unknown) => void): Promise<void>;
};
type Req = express.Request & { session: Session | undefined; sessionID: string | undefined };
type Handler = (req: Req, res: express.Response, next: express.NextFunction) => unknown;

async function app(
  routes: Record<string, Handler>,
  options: Partial<KvSessionOptions> = {},
  setup?: (a: express.Express) => void,
  store: KvStore = createMemoryStore(),
) {
  const a = express();
  setup?.(a);
  a.use(kvSession({ store, secrets: [SECRET], ...options } as KvSessionOptions));
  for (const [path, h] of Object.entries(routes)) a.all(path, h as unknown as express.RequestHandler);
  a.use((err: Error, _req: express.Request, res: express.Response, _n: express.NextFunction) => {
    res.status(500).json({ error: err.message });
  });
  return serve(a);
}

const rawId = (cookie: string) => cookie.split("=")[1]!.slice(0, 43);

describe("what express-session does, done the same way here", () => {
  it("a new visitor whose session stays empty gets no cookie and no store entry (saveUninitialized: false)", async () => {
    const store = createMemoryStore();
    const { client } = await app(
      { "/look": (req, res) => res.json({ ...req.session }) },
      {},
      undefined,
      store,
    );
    const r = await client().request("/look");
    expect([r.status, r.setCookie]).toEqual([200, []]);
    expect((await store.listKeys()).keys).toEqual([]);
  });

  it("req.session.id and req.sessionID are set by save() of a new session, before the response", async () => {
    const { client } = await app({
      "/new": (req, res, next) => {
        const s = req.session!;
        const before = [s.id ?? null, req.sessionID ?? null];
        s.n = 1;
        s.save((err) => {
          if (err) return next(err);
          res.json({ before, id: s.id, sessionID: req.sessionID });
        });
      },
    });
    const c = client();
    const r = await c.request("/new");
    const body = JSON.parse(r.text);
    expect(body.before).toEqual([null, null]);
    expect(body.id).toBe(hashId(rawId(c.cookie!)));
    expect(body.sessionID).toBe(body.id);
  });

  it("reload() of a session destroyed meanwhile fails as express-session's does, and shows no data", async () => {
    let release!: () => void;
    let arrived!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (arrived = r));
    const { client } = await app({
      "/count": (req, res) => {
        const s = req.session!;
        s.n = ((s.n as number | undefined) ?? 0) + 1;
        res.end();
      },
      "/slow-reload": async (req, res) => {
        arrived();
        await released;
        const s = req.session!;
        s.reload((err) =>
          res.json({ error: (err as Error | undefined)?.message ?? null, data: { ...req.session } }),
        );
      },
      "/logout": (req, res) => {
        void req.session!.destroy(() => res.end());
      },
      "/reload-new": (req, res) => {
        req.session!.reload((err) => res.json({ error: (err as Error | undefined)?.message ?? null }));
      },
    });
    const c = client();
    await c.request("/count");
    const cookie = c.cookie!;
    const slow = c.request("/slow-reload", { headers: { cookie } });
    await reached;
    await c.request("/logout", { headers: { cookie } });
    release();
    expect(JSON.parse((await slow).text)).toEqual({ error: "failed to load session", data: {} });
    // A session that was never stored cannot be reloaded either.
    expect(JSON.parse((await client().request("/reload-new")).text)).toEqual({
      error: "failed to load session",
    });
  });

  it("a request outside cookie.path gets no session and no cookie (RFC 6265 path-match)", async () => {
    const seen: Record<string, boolean> = {};
    const route: Handler = (req, res) => {
      seen[req.path] = req.session !== undefined;
      if (req.session) req.session.n = 1;
      res.end();
    };
    const { client } = await app(
      { "/app": route, "/app/page": route, "/application": route, "/other": route },
      { cookie: { path: "/app" } },
    );
    for (const path of ["/app", "/app/page?x=1", "/application", "/other"]) {
      const r = await client().request(path);
      const inside = path.startsWith("/app/") || path === "/app";
      expect({ path, cookie: r.setCookie.length }).toEqual({ path, cookie: inside ? 1 : 0 });
    }
    expect(seen).toEqual({ "/app": true, "/app/page": true, "/application": false, "/other": false });
  });

  it("cookie.secure: true never sends the cookie over plain HTTP, and does over HTTPS", async () => {
    const routes: Record<string, Handler> = {
      "/count": (req, res) => {
        req.session!.n = 1;
        res.end();
      },
    };
    const { client } = await app(routes, { cookie: { secure: true } }, (a) =>
      a.set("trust proxy", "loopback"),
    );
    expect((await client().request("/count")).setCookie).toEqual([]);
    const https = await client().request("/count", { headers: { "x-forwarded-proto": "https" } });
    expect(https.setCookie[0]).toMatch(/^__Host-sid=.*; Secure/);
  });

  it("trustProxy: true believes X-Forwarded-Proto under Express too (its last value)", async () => {
    const routes: Record<string, Handler> = {
      "/count": (req, res) => {
        req.session!.n = 1;
        res.end();
      },
    };
    const { client } = await app(routes, { trustProxy: true });
    const https = await client().request("/count", { headers: { "x-forwarded-proto": "http, https" } });
    expect(https.setCookie[0]).toMatch(/^__Host-sid=.*; Secure/);
    const spoofed = await client().request("/count", { headers: { "x-forwarded-proto": "https, http" } });
    expect(spoofed.setCookie[0]).toMatch(/^sid=/);
    // Without the option the header is Express's business alone (here: not trusted).
    const { client: plain } = await app(routes);
    expect(
      (await plain().request("/count", { headers: { "x-forwarded-proto": "https" } })).setCookie[0],
    ).toMatch(/^sid=/);
  });

  it("delete req.session takes the session off this request only, as with express-session's default unset: 'keep'", async () => {
    const { client } = await app({
      "/count": (req, res) => {
        req.session!.n = ((req.session!.n as number | undefined) ?? 0) + 1;
        res.end(String(req.session!.n));
      },
      "/drop": (req, res) => {
        delete (req as { session?: unknown }).session;
        res.json({ has: "session" in req });
      },
    });
    const c = client();
    await c.request("/count");
    expect(JSON.parse((await c.request("/drop")).text)).toEqual({ has: false });
    expect((await c.request("/count")).text).toBe("2");
  });
});

describe("differences from express-session found by its own suite", () => {
  it("the session cookie is read from the Cookie header only, never from cookie-parser's req.cookies", async () => {
    const routes: Record<string, Handler> = {
      "/set": (req, res) => {
        req.session!.n = 1;
        res.end();
      },
      "/n": (req, res) => res.json({ n: req.session!.n ?? null }),
    };
    // An earlier middleware parsed the cookies, then the header changed: what the browser sent now counts.
    const { client } = await app(routes, {}, (a) =>
      a.use((req, _res, next) => {
        const cookies = Object.fromEntries(
          (req.headers.cookie ?? "")
            .split("; ")
            .map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]),
        );
        (req as unknown as { cookies: unknown }).cookies = cookies;
        if (req.headers["x-replace-cookie"] !== undefined) req.headers.cookie = "foo=bar";
        next();
      }),
    );
    const c = client();
    await c.request("/set");
    expect(JSON.parse((await c.request("/n")).text)).toEqual({ n: 1 });
    const replaced = await c.request("/n", { headers: { "x-replace-cookie": "1" } });
    expect(JSON.parse(replaced.text)).toEqual({ n: null });
  });

  it("Object.keys(req.session) lists only the data; cookie is there but not enumerable", async () => {
    const { client } = await app({
      "/keys": (req, res) => {
        req.session!.a = 1;
        res.json({ keys: Object.keys(req.session!), cookie: typeof req.session!.cookie });
      },
    });
    expect(JSON.parse((await client().request("/keys")).text)).toEqual({ keys: ["a"], cookie: "object" });
  });

  it("no express-session constructors: stores are kvsession drivers, and there is no Session or Cookie class", async () => {
    const exported = await import("../src/index.js");
    for (const name of ["Store", "MemoryStore", "Session", "Cookie"])
      expect(exported).not.toHaveProperty(name);
    expect(() => kvSession({ store: new (class Store {})() as never, secrets: [SECRET] })).toThrow(
      /toExpressSessionStore/,
    );
  });
});
