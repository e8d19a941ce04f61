import type { AddressInfo } from "node:net";
import fastifyCookie from "@fastify/cookie";
import fastifyCsrf, { type FastifyCsrfProtectionOptions } from "@fastify/csrf-protection";
import { createMemoryStore } from "@kvsession/kv";
import { cookieJar, SECRET } from "@kvsession/test-helpers";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import kvSession from "../src/index.js";

// The real @fastify/csrf-protection, unchanged, in each of its modes: it keeps its secret in the
// session ('@fastify/session': `request.session._csrf`; '@fastify/secure-session':
// `request.session.get/set("_csrf")`) or in a cookie of its own ('@fastify/cookie').

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(csrf: FastifyCsrfProtectionOptions) {
  const app = Fastify();
  apps.push(app);
  await app.register(kvSession, { store: createMemoryStore(), secrets: [SECRET] });
  if (csrf.sessionPlugin === "@fastify/cookie" || csrf.sessionPlugin === undefined)
    await app.register(fastifyCookie, { secret: SECRET });
  await app.register(fastifyCsrf, csrf);
  app.get("/form", async (_request, reply) => ({ token: reply.generateCsrf() }));
  app.post("/transfer", { onRequest: app.csrfProtection }, async (request) => {
    request.session.count = (request.session.count ?? 0) + 1;
    return { done: request.session.count };
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

const post = (token?: string): RequestInit => ({
  method: "POST",
  headers: token === undefined ? {} : { "x-csrf-token": token },
});

describe.each([
  ["@fastify/session", { sessionPlugin: "@fastify/session" }],
  ["@fastify/secure-session", { sessionPlugin: "@fastify/secure-session" }],
  ["@fastify/cookie", { sessionPlugin: "@fastify/cookie" }],
] as const)("@fastify/csrf-protection in '%s' mode", (_mode, csrf) => {
  it("accepts a valid token on every later request and refuses a wrong or missing one with 403", async () => {
    const url = await start(csrf);
    const b = cookieJar();
    const { token } = (await (await b.fetch(`${url}/form`)).json()) as { token: string };
    expect(b.jar.size).toBeGreaterThan(0);
    expect((await b.fetch(`${url}/transfer`, post(token))).status).toBe(200);
    // The secret persisted: the same token keeps working, and a fresh one from it too.
    expect(await (await b.fetch(`${url}/transfer`, post(token))).json()).toEqual({ done: 2 });
    const { token: again } = (await (await b.fetch(`${url}/form`)).json()) as { token: string };
    expect((await b.fetch(`${url}/transfer`, post(again))).status).toBe(200);
    const forged = await b.fetch(`${url}/transfer`, post(`${token.slice(0, -4)}AAAA`));
    expect([forged.status, ((await forged.json()) as { code: string }).code]).toEqual([
      403,
      "FST_CSRF_INVALID_TOKEN",
    ]);
    expect((await b.fetch(`${url}/transfer`, post())).status).toBe(403);
    // Another browser, with the token but without the victim's cookies, has no secret to match it.
    const other = await cookieJar().fetch(`${url}/transfer`, post(token));
    expect([other.status, ((await other.json()) as { code: string }).code]).toEqual([
      403,
      "FST_CSRF_MISSING_SECRET",
    ]);
  });
});

describe("@fastify/csrf-protection with user-bound tokens ('@fastify/secure-session' mode)", () => {
  it("passes `userInfo` through request.session.options() without breaking the token", async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(kvSession, { store: createMemoryStore(), secrets: [SECRET] });
    await app.register(fastifyCsrf, {
      sessionPlugin: "@fastify/secure-session",
      getUserInfo: (request) => request.session.get("user") as string,
    });
    app.post("/login", async (request, reply) => {
      request.session.user = "ada";
      return { token: reply.generateCsrf({ userInfo: "ada" }) };
    });
    app.post("/act", { onRequest: app.csrfProtection }, async () => ({ ok: true }));
    await app.listen({ port: 0, host: "127.0.0.1" });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const b = cookieJar();
    const { token } = (await (await b.fetch(`${url}/login`, { method: "POST" })).json()) as { token: string };
    expect((await b.fetch(`${url}/act`, post(token))).status).toBe(200);
  });
});
