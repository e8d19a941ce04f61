import type { AddressInfo } from "node:net";
import { Authenticator } from "@fastify/passport";
import { createMemoryStore } from "@kvsession/kv";
import { cookieJar, SECRET } from "@kvsession/test-helpers";
import Fastify, { type FastifyInstance } from "fastify";
import { Strategy as LocalStrategy } from "passport-local";
import { afterEach, describe, expect, it } from "vitest";
import kvSession from "../src/index.js";

// The real @fastify/passport, unchanged, with passport-local: it keeps the logged-in user through
// request.session.get/set, rotates the ID with regenerate(fields) on login and logout, and its
// flash messages (@fastify/flash) live in the session too.

interface User {
  id: string;
  name: string;
}
const users = new Map<string, User & { password: string }>([
  ["ada", { id: "u1", name: "ada", password: "lovelace" }],
]);

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start() {
  const app = Fastify();
  apps.push(app);
  const passport = new Authenticator();
  passport.use(
    "local",
    new LocalStrategy((username, password, done) => {
      const user = users.get(username);
      done(null, user && user.password === password ? { id: user.id, name: user.name } : false);
    }),
  );
  passport.registerUserSerializer(async (user: User) => user.id);
  passport.registerUserDeserializer(async (id: string) => {
    const found = [...users.values()].find((u) => u.id === id);
    return found ? { id: found.id, name: found.name } : null;
  });
  await app.register(kvSession, { store: createMemoryStore(), secrets: [SECRET] });
  await app.register(passport.initialize());
  await app.register(passport.secureSession());
  app.post("/login", { preValidation: passport.authenticate("local") }, async (request) => ({
    user: request.user,
  }));
  app.post(
    "/login-form",
    {
      preValidation: passport.authenticate("local", {
        failureRedirect: "/login",
        failureFlash: "wrong name or password",
      }),
    },
    async () => ({ ok: true }),
  );
  app.post(
    "/login-keep",
    { preValidation: passport.authenticate("local", { keepSessionInfo: true }) },
    async (request) => ({ user: request.user }),
  );
  app.get("/login", async (_request, reply) => ({ errors: reply.flash("error") }));
  app.get("/me", async (request, reply) =>
    request.isAuthenticated() ? { user: request.user } : reply.code(401).send({ user: null }),
  );
  app.post("/cart", async (request) => {
    request.session.cart = ["apple"];
    return { ok: true };
  });
  app.get("/cart", async (request) => ({ cart: request.session.cart ?? null }));
  app.post("/logout", async (request) => {
    await request.logout();
    return { ok: true };
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

const login = (name: string, password: string): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ username: name, password }),
});

describe("@fastify/passport with a local strategy", () => {
  it("logs in with a new session ID, keeps the user across requests, and logs out", async () => {
    const url = await start();
    const b = cookieJar();
    await b.fetch(`${url}/cart`, { method: "POST" });
    const anonymous = b.header();
    const res = await b.fetch(`${url}/login`, login("ada", "lovelace"));
    expect(await res.json()).toEqual({ user: { id: "u1", name: "ada" } });
    // Login rotated the ID: the pre-login cookie (which an attacker may have planted) is not logged in.
    expect(b.header()).not.toBe(anonymous);
    expect((await fetch(`${url}/me`, { headers: { cookie: anonymous } })).status).toBe(401);
    expect(await (await b.fetch(`${url}/me`)).json()).toEqual({ user: { id: "u1", name: "ada" } });
    // clearSessionOnLogin (the default): data from before the login is gone.
    expect(await (await b.fetch(`${url}/cart`)).json()).toEqual({ cart: null });
    const loggedIn = b.header();
    await b.fetch(`${url}/logout`, { method: "POST" });
    expect((await b.fetch(`${url}/me`)).status).toBe(401);
    // The logged-in cookie, replayed after the logout, is not logged in either.
    expect((await fetch(`${url}/me`, { headers: { cookie: loggedIn } })).status).toBe(401);
  });

  it("refuses a wrong password with 401 and stays anonymous", async () => {
    const url = await start();
    const b = cookieJar();
    expect((await b.fetch(`${url}/login`, login("ada", "wrong"))).status).toBe(401);
    expect((await b.fetch(`${url}/me`)).status).toBe(401);
  });

  it("keepSessionInfo keeps the data from before the login", async () => {
    const url = await start();
    const b = cookieJar();
    await b.fetch(`${url}/cart`, { method: "POST" });
    const before = b.header();
    expect((await b.fetch(`${url}/login-keep`, login("ada", "lovelace"))).status).toBe(200);
    expect(b.header()).not.toBe(before);
    expect(await (await b.fetch(`${url}/cart`)).json()).toEqual({ cart: ["apple"] });
    expect((await b.fetch(`${url}/me`)).status).toBe(200);
  });

  it("a failed form login redirects with a flash message, shown once", async () => {
    const url = await start();
    const b = cookieJar();
    const res = await b.fetch(`${url}/login-form`, login("ada", "wrong"));
    expect([res.status, res.headers.get("location")]).toEqual([302, "/login"]);
    expect(await (await b.fetch(`${url}/login`)).json()).toEqual({ errors: ["wrong name or password"] });
    expect(await (await b.fetch(`${url}/login`)).json()).toEqual({ errors: [] });
  });
});
