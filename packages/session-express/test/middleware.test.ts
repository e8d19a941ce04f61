import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { hashId } from "@kvsession/session";
import express from "express";
import expressSession from "express-session";
import { afterEach, describe, expect, it } from "vitest";
import { bindUser, coreSession, type KvSessionOptions, kvSession, sessionUserId } from "../src/index.js";
import { client, closeServers, countingStore, SECRET, serve } from "./helpers.js";

afterEach(closeServers);

type Req = Omit<express.Request, "session" | "sessionID"> & {
  // biome-ignore lint/suspicious/noExplicitAny: session data is untyped here, as in express-session apps without SessionData.
  session: Record<string, any>;
  sessionID: string | undefined;
};
type Handler = (req: Req, res: express.Response, next: express.NextFunction) => unknown;

/** An app with the middleware mounted app-wide, the given routes, and an error handler that shows the status. */
async function app(
  store: KvStore,
  routes: Record<string, Handler>,
  opts: Partial<KvSessionOptions> & { errorHandler?: boolean; setup?: (a: express.Express) => void } = {},
) {
  const { setup, errorHandler, ...options } = opts;
  const a = express();
  setup?.(a);
  const mw = kvSession({ store, secrets: [SECRET], ...options } as KvSessionOptions);
  a.use(mw);
  for (const [path, h] of Object.entries(routes)) a.all(path, h as unknown as express.RequestHandler);
  if (errorHandler !== false)
    a.use((err: Error & { status?: number }, _req: express.Request, res: express.Response, _n: unknown) => {
      res.status(err.status ?? 500).send(`error ${err.name}`);
    });
  const s = await serve(a);
  return { ...s, mw };
}

const counter: Handler = (req, res) => {
  req.session.views = (req.session.views ?? 0) + 1;
  res.send(String(req.session.views));
};

describe("req.session as express-session users know it", () => {
  it("keeps plain properties across requests, in an HttpOnly cookie holding only an ID", async () => {
    const { client } = await app(createMemoryStore(), { "/count": counter });
    const c = client();
    const first = await c.request("/count");
    expect(first.text).toBe("1");
    expect(first.setCookie).toHaveLength(1);
    expect(first.setCookie[0]).toMatch(
      /^sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    expect(first.headers.get("cache-control")).toBe("no-store");
    expect((await c.request("/count")).text).toBe("2");
    expect((await c.request("/count")).text).toBe("3");
    // A second browser has its own session.
    expect((await client().request("/count")).text).toBe("1");
  });

  it("exposes req.sessionID and req.session.id as the store handle of a loaded session", async () => {
    const { client } = await app(createMemoryStore(), {
      "/count": counter,
      "/id": (req, res) => res.json({ id: req.sessionID ?? null, same: req.session.id === req.sessionID }),
    });
    const c = client();
    expect(JSON.parse((await c.request("/id")).text)).toEqual({ id: null, same: true });
    await c.request("/count");
    const raw = c.cookie!.split("=")[1]!.slice(0, 43);
    expect(JSON.parse((await c.request("/id")).text)).toEqual({ id: hashId(raw), same: true });
  });

  it("deletes a property that was removed, and ignores one set to undefined", async () => {
    const { client } = await app(createMemoryStore(), {
      "/set": (req, res) => {
        req.session.a = 1;
        req.session.b = { nested: [1, 2] };
        res.end();
      },
      "/drop": (req, res) => {
        delete req.session.a;
        req.session.b = undefined;
        res.end();
      },
      "/show": (req, res) => res.json({ ...req.session }),
    });
    const c = client();
    await c.request("/set");
    expect(JSON.parse((await c.request("/show")).text)).toEqual({ a: 1, b: { nested: [1, 2] } });
    await c.request("/drop");
    expect(JSON.parse((await c.request("/show")).text)).toEqual({});
  });

  it("saves a nested mutation (compared as JSON, not by reference)", async () => {
    const { client } = await app(createMemoryStore(), {
      "/push": (req, res) => {
        req.session.list ??= [];
        req.session.list.push(req.session.list.length);
        res.json(req.session.list);
      },
    });
    const c = client();
    await c.request("/push");
    await c.request("/push");
    expect(JSON.parse((await c.request("/push")).text)).toEqual([0, 1, 2]);
  });

  it("regenerate/destroy/reload/save/touch take a callback", async () => {
    const { client } = await app(createMemoryStore(), {
      "/count": counter,
      "/regenerate": (req, res, next) => {
        const before = req.session;
        req.session.regenerate((err?: unknown) => {
          if (err) return next(err);
          res.json({ fresh: req.session !== before, data: { ...req.session }, id: req.sessionID ?? null });
        });
      },
      "/destroy": (req, res, next) =>
        req.session.destroy((err?: unknown) =>
          err ? next(err) : res.json({ gone: req.session === undefined }),
        ),
      "/reload": (req, res, next) => {
        req.session.views = 100;
        req.session.reload((err?: unknown) => (err ? next(err) : res.json({ views: req.session.views })));
      },
      "/save-touch": (req, res, next) => {
        req.session.saved = true;
        req.session.save((err?: unknown) => {
          if (err) return next(err);
          req.session.touch((err2?: unknown) => (err2 ? next(err2) : res.end("ok")));
        });
      },
    });
    const c = client();
    await c.request("/count");
    await c.request("/count");
    expect(JSON.parse((await c.request("/reload")).text)).toEqual({ views: 2 });
    expect((await c.request("/save-touch")).text).toBe("ok");
    const old = c.cookie!;
    const regen = await c.request("/regenerate");
    const body = JSON.parse(regen.text);
    expect(body).toMatchObject({ fresh: true, data: {} });
    expect(c.cookie).not.toBe(old);
    // req.sessionID follows the new ID at once (the handle, i.e. the hash of the new ID).
    expect(body.id).toBe(hashId(c.cookie!.split("=")[1]!.slice(0, 43)));
    // The old ID stopped working at once (fixation defence).
    const replay = client();
    replay.cookie = old;
    expect((await replay.request("/count")).text).toBe("1");
    const destroyed = await c.request("/destroy");
    expect(JSON.parse(destroyed.text)).toEqual({ gone: true });
    expect(destroyed.setCookie[0]).toMatch(/^sid=;.*Max-Age=0/);
  });

  it("the same methods return promises", async () => {
    const { client } = await app(createMemoryStore(), {
      "/flow": async (req, res) => {
        req.session.a = 1;
        await req.session.save();
        await req.session.touch();
        req.session.a = 2;
        await req.session.reload();
        const afterReload = req.session.a;
        await req.session.regenerate();
        req.session.b = 3;
        res.json({ afterReload, now: { ...req.session } });
      },
      "/show": (req, res) => res.json({ ...req.session }),
      "/destroy": async (req, res) => {
        await req.session.destroy();
        res.end("bye");
      },
    });
    const c = client();
    expect(JSON.parse((await c.request("/flow")).text)).toEqual({ afterReload: 1, now: { b: 3 } });
    expect(JSON.parse((await c.request("/show")).text)).toEqual({ b: 3 });
    await c.request("/destroy");
    expect(c.cookie).toBeUndefined();
  });

  it("req.session.cookie reports maxAge/expires; assigning maxAge gives this session its own lifetime", async () => {
    const { client } = await app(
      createMemoryStore(),
      {
        "/c": (req, res) => {
          req.session.cookie.maxAge = 1000;
          req.session.x = 1;
          res.json({ maxAge: req.session.cookie.maxAge, expires: req.session.cookie.expires !== null });
        },
      },
      { absoluteTimeoutMs: 3_600_000, cookie: { persistent: true } },
    );
    const r = await client().request("/c");
    expect(JSON.parse(r.text)).toEqual({ maxAge: 1000, expires: true });
    expect(r.setCookie[0]).toMatch(/Max-Age=1;/);
    const session = await app(createMemoryStore(), {
      "/c": (req, res) =>
        res.json({ maxAge: req.session.cookie.maxAge, expires: req.session.cookie.expires }),
    });
    expect(JSON.parse((await session.client().request("/c")).text)).toEqual({ maxAge: null, expires: null });
  });

  it("bindUser regenerates and lets revokeUser log the user out everywhere", async () => {
    const { client, mw } = await app(createMemoryStore(), {
      "/login": async (req, res) => {
        req.session.name = "ada";
        await bindUser(req, "u1");
        res.end(String(await sessionUserId(req)));
      },
      "/me": async (req, res) =>
        res.json({ user: (await sessionUserId(req)) ?? null, name: req.session.name ?? null }),
      "/others": async (req, res) =>
        res.json(await mw.sessions.revokeUser("u1", { except: coreSession(req) })),
    });
    const [a, b, c] = [client(), client(), client()];
    for (const x of [a, b, c]) expect((await x.request("/login")).text).toBe("u1");
    expect(JSON.parse((await a.request("/me")).text)).toEqual({ user: "u1", name: "ada" });
    expect((await a.request("/others")).text).toBe("2");
    expect(JSON.parse((await a.request("/me")).text)).toEqual({ user: "u1", name: "ada" });
    expect(JSON.parse((await b.request("/me")).text)).toEqual({ user: null, name: null });
  });
});

describe("req.session and req.sessionID: plain properties of each request, as with express-session", () => {
  it("are own properties of req, in the app and in a sub-app, and Express's request prototype stays untouched", async () => {
    const seen: Array<{ own: boolean; ownId: boolean; id: unknown; views: unknown }> = [];
    const probe: Handler = (req, res) => {
      req.session.views = (req.session.views ?? 0) + 1;
      seen.push({
        own: Object.hasOwn(req, "session"),
        ownId: Object.hasOwn(req, "sessionID"),
        id: req.sessionID,
        views: req.session.views,
      });
      res.send(String(req.session.views));
    };
    const sub = express();
    sub.get("/count", probe as unknown as express.RequestHandler);
    const { client } = await app(createMemoryStore(), { "/count": probe });
    const a = express();
    a.use(kvSession({ store: createMemoryStore(), secrets: [SECRET] }));
    a.use("/sub", sub);
    const s2 = await serve(a);
    const c = client();
    await c.request("/count");
    await c.request("/count");
    const c2 = s2.client();
    await c2.request("/sub/count");
    expect((await c2.request("/sub/count")).text).toBe("2");
    expect(seen.map((x) => [x.own, x.ownId, x.views])).toEqual([
      [true, true, 1],
      [true, true, 2],
      [true, true, 1],
      [true, true, 2],
    ]);
    // Nothing was defined on the request prototypes every other middleware shares.
    for (const proto of [a.request, sub.request])
      for (const name of ["session", "sessionID"]) expect(Object.hasOwn(proto, name)).toBe(false);
    // A loaded session has its store handle as req.sessionID.
    expect(seen[1]!.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(seen[3]!.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("assigning and destroying behave as with data properties", async () => {
    const { client } = await app(createMemoryStore(), {
      "/count": counter,
      "/replace": (req, res) => {
        (req as { session: unknown }).session = undefined;
        res.json({ session: req.session === undefined, id: typeof req.sessionID });
      },
      "/destroy": async (req, res) => {
        await req.session.destroy();
        res.json({ session: req.session === undefined, id: req.sessionID === undefined });
      },
    });
    const c = client();
    await c.request("/count");
    expect(JSON.parse((await c.request("/replace")).text)).toEqual({ session: true, id: "string" });
    // The assignment only changed this request's view: the session itself is still there.
    expect((await c.request("/count")).text).toBe("2");
    expect(JSON.parse((await c.request("/destroy")).text)).toEqual({ session: true, id: true });
    expect((await c.request("/count")).text).toBe("1");
  });

  it("leaves express-session on other routes of the same app working, its delete req.session included", async () => {
    const a = express();
    const ours = kvSession({ store: createMemoryStore(), secrets: [SECRET] });
    const theirs = expressSession({
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
      name: "es.sid",
    });
    a.get("/ours", ours, counter as unknown as express.RequestHandler);
    a.get("/theirs", theirs, (req, res) => {
      const s = req.session as unknown as { views?: number };
      s.views = (s.views ?? 0) + 1;
      res.json({ views: s.views, own: Object.hasOwn(req, "session") });
    });
    a.get("/theirs/destroy", theirs, (req, res, next) => {
      req.session.destroy((err) => {
        if (err) return next(err);
        res.json({ gone: req.session === undefined });
      });
    });
    const { client } = await serve(a);
    // One jar per cookie name (the test jar keeps one cookie).
    const mine = client();
    const es = client();
    // Ours first, so the accessors are on app.request before express-session assigns.
    expect((await mine.request("/ours")).text).toBe("1");
    expect(JSON.parse((await es.request("/theirs")).text)).toEqual({ views: 1, own: true });
    expect(JSON.parse((await es.request("/theirs")).text)).toEqual({ views: 2, own: true });
    expect((await mine.request("/ours")).text).toBe("2");
    expect(JSON.parse((await es.request("/theirs/destroy")).text)).toEqual({ gone: true });
    expect(JSON.parse((await es.request("/theirs")).text)).toEqual({ views: 1, own: true });
    expect((await mine.request("/ours")).text).toBe("3");
  });
});

describe("the cookie goes out before the headers", () => {
  it("on a redirect", async () => {
    const { client } = await app(createMemoryStore(), {
      "/go": (req, res) => {
        req.session.went = true;
        res.redirect("/there");
      },
    });
    const r = await client().request("/go");
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe("/there");
    expect(r.setCookie).toHaveLength(1);
  });

  it("on a streamed response (explicit writeHead, then chunks) and on a piped stream", async () => {
    const { client } = await app(createMemoryStore(), {
      "/chunks": (req, res) => {
        req.session.streamed = 1;
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("a");
        setTimeout(() => {
          res.write("b");
          res.end("c");
        }, 5);
      },
      "/pipe": (req, res) => {
        req.session.piped = 1;
        Readable.from(["x", "y", "z"]).pipe(res);
      },
      "/show": (req, res) => res.json({ ...req.session }),
    });
    const c = client();
    const chunks = await c.request("/chunks");
    expect(chunks.text).toBe("abc");
    expect(chunks.setCookie).toHaveLength(1);
    expect(chunks.headers.get("cache-control")).toBe("no-store");
    const piped = await client().request("/pipe");
    expect(piped.text).toBe("xyz");
    expect(piped.setCookie).toHaveLength(1);
    expect(JSON.parse((await c.request("/show")).text)).toEqual({ streamed: 1 });
  });

  it("inside a sub-app, which swaps the response's prototype on the way in", async () => {
    const sub = express();
    sub.get("/count", counter as unknown as express.RequestHandler);
    const parent = express();
    parent.use(kvSession({ store: createMemoryStore(), secrets: [SECRET] }));
    parent.use("/sub", sub);
    const s = await serve(parent);
    const c = s.client();
    const first = await c.request("/sub/count");
    expect(first.text).toBe("1");
    expect(first.setCookie).toHaveLength(1);
    expect((await c.request("/sub/count")).text).toBe("2");
    // An app without the middleware in the same process is untouched by the hooks.
    const plainApp = express();
    plainApp.get("/x", (_req, res) => {
      res.setHeader("x-plain", "1");
      res.send("plain");
    });
    const plain = await (await serve(plainApp)).client().request("/x");
    expect([plain.text, plain.headers.get("x-plain"), plain.setCookie]).toEqual(["plain", "1", []]);
  });

  it("after a middleware that wrapped res.end itself (compression-style): the commit still comes first", async () => {
    const order: string[] = [];
    const { client } = await app(
      createMemoryStore(),
      {
        "/count": (req, res) => {
          order.push("handler");
          counter(req, res, () => {});
        },
      },
      {
        setup: (a) =>
          a.use((_req, res, next) => {
            const end = res.end;
            res.end = function (this: express.Response, ...args: unknown[]) {
              order.push(`wrapper sees Set-Cookie: ${res.getHeader("set-cookie") !== undefined}`);
              res.setHeader("x-wrapped", "1");
              return (end as (...a: unknown[]) => express.Response).apply(this, args);
            } as typeof res.end;
            next();
          }),
      },
    );
    const r = await client().request("/count");
    expect([r.text, r.headers.get("x-wrapped"), r.setCookie.length]).toEqual(["1", "1", 1]);
    expect(order).toEqual(["handler", "wrapper sees Set-Cookie: true"]);
  });

  it("on a plain node:http server, without Express", async () => {
    const mw = kvSession({ store: createMemoryStore(), secrets: [SECRET] });
    const server = createServer((req, res) =>
      mw(req, res, (err) => {
        if (err) {
          res.statusCode = 500;
          return res.end();
        }
        const session = (req as unknown as Req).session;
        session.n = (session.n ?? 0) + 1;
        res.end(String(session.n));
      }),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const first = await c.request("/");
      expect([first.text, first.setCookie.length]).toEqual(["1", 1]);
      expect((await c.request("/")).text).toBe("2");
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("keeps a Set-Cookie the handler set itself", async () => {
    const { client } = await app(createMemoryStore(), {
      "/both": (req, res) => {
        res.cookie("theme", "dark");
        req.session.x = 1;
        res.end();
      },
    });
    const r = await client().request("/both");
    expect(r.setCookie.map((c) => c.split("=")[0])).toEqual(["theme", "sid"]);
  });
});

describe("store failures", () => {
  it("a failed load goes to next(err) with status 503, and the handler never runs", async () => {
    const kv = createMemoryStore();
    let ran = 0;
    const { client } = await app(kv, {
      "/count": (req, res, next) => {
        ran++;
        counter(req, res, next);
      },
    });
    const c = client();
    await c.request("/count");
    await kv.close();
    const r = await c.request("/count");
    expect(r.status).toBe(503);
    expect(r.text).toBe("error SessionStoreError");
    expect(ran).toBe(1);
  });

  it("a failed commit replaces the handler's response (already 'sent') by the error handler's 503", async () => {
    const kv = createMemoryStore();
    const { client } = await app(kv, {
      "/go": (req, res) => {
        req.session.x = 1;
        res.redirect("/done");
      },
    });
    await kv.close();
    const r = await client().request("/go");
    expect(r.status).toBe(503);
    expect(r.text).toBe("error SessionStoreError");
    expect(r.headers.get("location")).toBeNull();
    expect(r.setCookie).toEqual([]);
  });

  it("Express's own error handler answers 503 too (err.status is set)", async () => {
    const kv = createMemoryStore();
    const { client } = await app(kv, { "/count": counter }, { errorHandler: false });
    await kv.close();
    expect((await client().request("/count")).status).toBe(503);
  });

  it("a value JSON cannot hold is a 500 through next(err), not a crash", async () => {
    const { client } = await app(createMemoryStore(), {
      "/big": (req, res) => {
        req.session.n = 10n;
        res.end("ok");
      },
    });
    const r = await client().request("/big");
    expect(r.status).toBe(500);
    expect(r.text).toBe("error SessionDataError");
  });
});

describe("concurrency and I/O", () => {
  it("two concurrent requests on one session changing different keys both survive", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let waiting = 0;
    const { client } = await app(createMemoryStore(), {
      "/init": (req, res) => {
        req.session.base = 0;
        res.end();
      },
      "/set/:key": async (req, res) => {
        // Both requests have loaded the same record before either writes.
        waiting++;
        if (waiting === 2) release();
        await gate;
        req.session[String(req.params.key)] = true;
        res.end();
      },
      "/show": (req, res) => res.json({ ...req.session }),
    });
    const c = client();
    await c.request("/init");
    const cookie = c.cookie!;
    await Promise.all([
      c.request("/set/left", { headers: { cookie } }),
      c.request("/set/right", { headers: { cookie } }),
    ]);
    expect(JSON.parse((await c.request("/show")).text)).toEqual({ base: 0, left: true, right: true });
  });

  it("a tampered or unsigned cookie never reaches the store, and is cleared", async () => {
    const { store, calls } = countingStore(createMemoryStore());
    const { client } = await app(store, {
      "/count": counter,
      "/peek": (req, res) => res.json({ ...req.session }),
    });
    const c = client();
    await c.request("/count");
    const good = c.cookie!;
    calls.length = 0;
    const value = good.split("=")[1]!;
    const flipped = value.slice(0, 10) + (value[10] === "A" ? "B" : "A") + value.slice(11);
    for (const bad of [`sid=${flipped}`, `sid=${value.slice(0, 43)}`, "sid=garbage", `sid=${value}x`]) {
      const r = await client().request("/peek", { headers: { cookie: bad } });
      expect(JSON.parse(r.text)).toEqual({});
      expect(r.setCookie[0]).toMatch(/^sid=;.*Max-Age=0/);
    }
    expect(calls).toEqual([]);
    await client().request("/peek", { headers: { cookie: good } });
    expect(calls.length).toBeGreaterThan(0);
  });

  it("skip(req) and route-level mounting keep other routes free of store I/O", async () => {
    const { store, calls } = countingStore(createMemoryStore());
    const a = express();
    const session = kvSession({ store, secrets: [SECRET], skip: (req) => req.url === "/skipped" });
    a.use("/app", session);
    a.get("/app/count", counter as unknown as express.RequestHandler);
    a.get("/skipped", session, (req, res) => res.json({ has: req.session !== undefined }));
    a.get("/plain", (req, res) => res.json({ has: req.session !== undefined }));
    const { client } = await serve(a);
    const c = client();
    await c.request("/app/count");
    calls.length = 0;
    expect(JSON.parse((await c.request("/plain")).text)).toEqual({ has: false });
    expect(JSON.parse((await c.request("/skipped")).text)).toEqual({ has: false });
    expect(calls).toEqual([]);
  });

  it("a request that reads the session without changing it writes nothing", async () => {
    const { store, calls } = countingStore(createMemoryStore());
    const { client } = await app(store, {
      "/count": counter,
      "/peek": (req, res) => res.json({ ...req.session }),
    });
    const c = client();
    await c.request("/count");
    calls.length = 0;
    const r = await c.request("/peek");
    expect(r.setCookie).toEqual([]);
    expect(calls.some((k) => /set|compareAndSet|delete/i.test(k))).toBe(false);
  });
});

describe("trust proxy comes from Express", () => {
  const route = { "/count": counter };
  it("X-Forwarded-Proto: https is believed only with app.set('trust proxy')", async () => {
    const trusted = await app(createMemoryStore(), route, { setup: (a) => a.set("trust proxy", "loopback") });
    const r1 = await trusted.client().request("/count", { headers: { "x-forwarded-proto": "https" } });
    expect(r1.setCookie[0]).toMatch(/^__Host-sid=.*; Secure/);
    const untrusted = await app(createMemoryStore(), route);
    const r2 = await untrusted.client().request("/count", { headers: { "x-forwarded-proto": "https" } });
    expect(r2.setCookie[0]).toMatch(/^sid=/);
    expect(r2.setCookie[0]).not.toMatch(/Secure/);
  });
});
