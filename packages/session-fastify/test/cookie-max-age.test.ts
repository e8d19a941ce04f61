import type { AddressInfo } from "node:net";
import { createMemoryStore } from "@kvsession/kv";
import { cookieJar, SECRET } from "@kvsession/test-helpers";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import kvSession, { type KvSessionOptions } from "../src/index.js";

const DAY = 24 * 3600_000;
const apps: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

/** The session cookie's Max-Age: "session" for a browser-session cookie, "none" when no cookie was set. */
function maxAge(res: Response): number | "session" | "none" {
  const line = res.headers.getSetCookie().find((l) => !/Max-Age=0/.test(l));
  if (line === undefined) return "none";
  const m = /; Max-Age=(\d+)/.exec(line);
  return m ? Number(m[1]) : "session";
}

async function start(options: KvSessionOptions) {
  const app = Fastify();
  apps.push(app);
  await app.register(kvSession, options);
  app.post<{ Querystring: { remember?: string } }>("/login", async (request) => {
    await request.session.regenerate(true);
    request.session.user = "u1";
    const r = request.query.remember;
    if (r === "maxAge") request.session.cookie.maxAge = 30 * DAY;
    if (r === "options") request.session.options({ maxAge: 2 * DAY });
    if (r === "huge") request.session.cookie.maxAge = 365 * DAY;
    if (r === "negative") request.session.cookie.maxAge = -1;
    return { maxAge: request.session.cookie.maxAge };
  });
  app.post("/count", async (request) => {
    request.session.n = ((request.session.n as number | undefined) ?? 0) + 1;
    return { maxAge: request.session.cookie.maxAge };
  });
  app.post("/regenerate", async (request) => {
    await request.session.regenerate();
    return { maxAge: request.session.cookie.maxAge };
  });
  app.get("/read", async (request) => ({ maxAge: request.session.cookie.maxAge }));
  await app.listen({ port: 0, host: "127.0.0.1" });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

// The absolute timeout outlasts every lifetime these tests set, so a cookie's Max-Age is its own, not the
// absolute deadline's remainder, which shrinks with each second the test takes.
const options = (): Array<[string, KvSessionOptions]> => [
  [
    "server-side",
    { store: createMemoryStore(), secrets: [SECRET], absoluteTimeoutMs: 60 * DAY, idleTimeoutMs: 7 * DAY },
  ],
  [
    "sealed",
    { sealed: true, secrets: [SECRET], absoluteTimeoutMs: 60 * DAY, idleTimeoutMs: 7 * DAY } as never,
  ],
];

describe.each(options())(
  "request.session.cookie.maxAge per session, as with @fastify/session (%s)",
  (_, opts) => {
    it("remember-me gives a persistent cookie, kept by regenerate and re-sent by a later write; others stay browser-session", async () => {
      const url = await start(opts);
      const plain = await cookieJar().fetch(`${url}/login`, { method: "POST" });
      expect(maxAge(plain)).toBe("session");
      expect(await plain.json()).toEqual({ maxAge: null });
      const b = cookieJar();
      const remembered = await b.fetch(`${url}/login?remember=maxAge`, { method: "POST" });
      expect(maxAge(remembered)).toBe(30 * 24 * 3600);
      const regenerated = await b.fetch(`${url}/regenerate`, { method: "POST" });
      expect(maxAge(regenerated)).toBe(30 * 24 * 3600);
      expect(await regenerated.json()).toEqual({ maxAge: 30 * DAY });
      const later = await b.fetch(`${url}/count`, { method: "POST" });
      expect(maxAge(later)).toBe(30 * 24 * 3600);
      const read = await b.fetch(`${url}/read`);
      expect(await read.json()).toEqual({ maxAge: 30 * DAY });
      expect(maxAge(read)).toBe("none");
    });

    it("options({ maxAge }) sets the lifetime, as in @fastify/session", async () => {
      const url = await start(opts);
      expect(maxAge(await cookieJar().fetch(`${url}/login?remember=options`, { method: "POST" }))).toBe(
        2 * 24 * 3600,
      );
    });

    it.each([
      ["longer than absoluteTimeoutMs", "huge", /request\.session\.cookie\.maxAge .*raise absoluteTimeoutMs/],
      ["negative", "negative", /request\.session\.cookie\.maxAge takes a whole number of ms from 1/],
    ])("a lifetime %s is a SessionDataError (500) and is not applied", async (_, remember, message) => {
      const url = await start(opts);
      const res = await cookieJar().fetch(`${url}/login?remember=${remember}`, { method: "POST" });
      expect(res.status).toBe(500);
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe("SESSION_DATA");
      expect(body.message).toMatch(message);
    });
  },
);

describe("request.session.cookie is not data", () => {
  it("assigning it throws instead of storing a key named cookie", async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(kvSession, { store: createMemoryStore(), secrets: [SECRET] });
    app.get("/", async (request) => {
      (request.session as unknown as Record<string, unknown>).cookie = { maxAge: 1 };
      return "stored";
    });
    const res = await app.inject("/");
    expect(res.statusCode).toBe(500);
    expect(res.json().message).toMatch(/"cookie" is a method of request\.session/);
  });
});
