import { createMemoryStore } from "@kvsession/kv";
import { createSessions } from "@kvsession/session";
import express from "express";
import expressSession from "express-session";
import { afterEach, describe, expect, it } from "vitest";
import { kvSession } from "../src/index.js";
import { type ExpressSession, makeSessionObject, type SessionState } from "../src/session-object.js";
import { closeServers, SECRET, serve } from "./helpers.js";

afterEach(closeServers);

function freshState(): SessionState {
  const sessions = createSessions({ store: createMemoryStore(), secrets: [SECRET] });
  return {
    core: sessions.open({ secure: false }),
    owner: sessions,
    https: false,
    serial: false,
    used: false,
    ctx: {
      cookie: {
        httpOnly: true,
        path: undefined,
        domain: undefined,
        secure: false,
        sameSite: undefined,
        lifetimeMs: null,
      },
      warnCookieWrite: () => {},
    },
    req: { headers: {} },
    object: undefined as unknown as ExpressSession,
    snapshot: new Map(),
    destroyed: false,
    id: undefined,
  };
}

describe("loaded data becomes plain properties of req.session", () => {
  it("except __proto__, constructor and prototype keys, which a record can hold as own keys", () => {
    // JSON.parse makes "__proto__" an own key, as a decoded record would have it.
    const data = JSON.parse('{"__proto__":{"polluted":true},"constructor":"c","prototype":"p","kept":1}');
    const session = makeSessionObject(freshState(), data);
    expect(typeof session.save).toBe("function");
    expect(session.polluted).toBeUndefined();
    expect(Object.keys(session)).toEqual(["kept"]);
    expect(Object.hasOwn(session, "constructor")).toBe(false);
    expect(Object.hasOwn(session, "prototype")).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("a req.session another middleware set earlier", () => {
  it("is not silently replaced: the request fails with an error that says why", async () => {
    const a = express();
    a.use(expressSession({ secret: SECRET, resave: false, saveUninitialized: false }));
    a.use(kvSession({ store: createMemoryStore(), secrets: [SECRET] }));
    a.get("/", (_req, res) => {
      res.send("handler ran");
    });
    a.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).send(err.message);
    });
    const r = await (await serve(a)).client().request("/");
    expect(r.status).toBe(500);
    expect(r.text).toMatch(/^req\.session is already set by an earlier middleware/);
  });
});
