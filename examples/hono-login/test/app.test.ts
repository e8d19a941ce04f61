import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { KvStore } from "@kvsession/kv";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp, DEMO_USERS } from "../src/app.js";

const SECRET = "hono-login-test-secret-0123456789abcdef";

/** One "browser": a cookie jar over fetch, following nothing by itself. */
function browser(base: string, userAgent: string) {
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  async function request(path: string, init: RequestInit = {}) {
    const headers = new Headers(init.headers);
    headers.set("user-agent", userAgent);
    if (jar.size > 0) headers.set("cookie", cookieHeader());
    const res = await fetch(base + path, { ...init, headers, redirect: "manual" });
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(";")[0]!;
      const name = pair.slice(0, pair.indexOf("="));
      if (/;\s*Max-Age=0/i.test(line)) jar.delete(name);
      else jar.set(name, pair.slice(pair.indexOf("=") + 1));
    }
    return res;
  }
  return {
    jar,
    cookieHeader,
    async page(path = "/") {
      const res = await request(path);
      return { res, text: await res.text() };
    },
    async post(path: string, fields: Record<string, string>) {
      return request(path, { method: "POST", body: new URLSearchParams(fields) });
    },
    async csrf() {
      const { text } = await this.page();
      return /name="csrf" value="([^"]+)"/.exec(text)![1]!;
    },
    async login(name: string, password: string) {
      return this.post("/login", { csrf: await this.csrf(), name, password });
    },
  };
}

let dir: string;
let store: KvStore;
let base: string;
let close: () => Promise<void>;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "hono-login-"));
  store = createSqliteStore({ path: join(dir, "sessions.sqlite") });
  const { app } = createApp({ store, secrets: [SECRET] });
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise<void>((resolve) => server.close(() => resolve()));
});
afterEach(async () => {
  await close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("examples/hono-login on a SQLite file", () => {
  it("login regenerates the session ID: the pre-login cookie no longer works", async () => {
    const a = browser(base, "Browser A");
    const anon = await a.page();
    expect(anon.text).toContain("<h1>Log in</h1>");
    const preLogin = a.cookieHeader();
    expect(preLogin).toMatch(/^sid=/);
    const res = await a.login("ada", DEMO_USERS.ada);
    expect(res.status).toBe(303);
    expect(a.cookieHeader()).not.toBe(preLogin);
    expect((await a.page()).text).toContain("<h1>Hello, ada</h1>");
    // Whoever kept (or planted) the pre-login cookie is not logged in.
    const replay = await fetch(`${base}/`, { headers: { cookie: preLogin } });
    const text = await replay.text();
    expect(text).toContain("<h1>Log in</h1>");
    expect(text).not.toContain("ada</h1>");
  });

  it("two browsers of one user: one lists both sessions and revokes the other, which is logged out", async () => {
    const a = browser(base, "Browser A");
    const b = browser(base, 'Browser <B> & "friends"');
    await a.login("ada", DEMO_USERS.ada);
    await b.login("ada", DEMO_USERS.ada);
    const { text } = await a.page();
    expect(text).toContain("Your active sessions (2)");
    expect(text).toContain("Browser A");
    // The user agent is shown escaped, never as markup.
    expect(text).toContain("Browser &#60;B&#62; &#38; &#34;friends&#34;");
    expect(text).not.toContain("<B>");
    expect(text.match(/this session/g)).toHaveLength(1);
    const handles = [...text.matchAll(/name="handle" value="([^"]+)"/g)].map((m) => m[1]!);
    expect(handles).toHaveLength(1);
    const csrf = /name="csrf" value="([^"]+)"/.exec(text)![1]!;
    const revoked = await a.post("/sessions/revoke", { csrf, handle: handles[0]! });
    expect(revoked.status).toBe(303);
    expect((await a.page()).text).toContain("That session is logged out.");
    const bCookie = b.cookieHeader();
    const after = await b.page();
    expect(after.text).toContain("<h1>Log in</h1>");
    // B's revoked cookie was replaced by a fresh anonymous session (for the login form's CSRF token).
    expect(b.cookieHeader()).not.toBe(bCookie);
    expect((await a.page()).text).toContain("Your active sessions (1)");
  });

  it("log out everywhere else keeps only the current session", async () => {
    const [a, b, c] = ["A", "B", "C"].map((n) => browser(base, `Browser ${n}`)) as [
      ReturnType<typeof browser>,
      ReturnType<typeof browser>,
      ReturnType<typeof browser>,
    ];
    for (const x of [a, b, c]) await x.login("ada", DEMO_USERS.ada);
    const other = browser(base, "Grace's");
    await other.login("grace", DEMO_USERS.grace);
    await a.post("/sessions/revoke-others", { csrf: await a.csrf() });
    const { text } = await a.page();
    expect(text).toContain("Logged out 2 other sessions.");
    expect(text).toContain("Your active sessions (1)");
    expect((await b.page()).text).toContain("<h1>Log in</h1>");
    expect((await c.page()).text).toContain("<h1>Log in</h1>");
    expect((await other.page()).text).toContain("<h1>Hello, grace</h1>");
  });

  it("a session handle of another user cannot be revoked", async () => {
    const a = browser(base, "A");
    const g = browser(base, "G");
    await a.login("ada", DEMO_USERS.ada);
    await g.login("grace", DEMO_USERS.grace);
    const ga = browser(base, "G2");
    await ga.login("grace", DEMO_USERS.grace);
    const graceHandle = /name="handle" value="([^"]+)"/.exec((await g.page()).text)![1]!;
    await a.post("/sessions/revoke", { csrf: await a.csrf(), handle: graceHandle });
    expect((await a.page()).text).toContain("No such session");
    expect((await ga.page()).text).toContain("<h1>Hello, grace</h1>");
  });

  it("rejects POSTs without the session's CSRF token, and wrong passwords", async () => {
    const a = browser(base, "A");
    await a.page();
    const noToken = await a.post("/login", { name: "ada", password: DEMO_USERS.ada });
    expect(noToken.status).toBe(403);
    const forged = await a.post("/login", { csrf: "x".repeat(43), name: "ada", password: DEMO_USERS.ada });
    expect(forged.status).toBe(403);
    // A cross-site form post carries no cookie at all in a SameSite=Lax browser: also refused.
    const cookieless = await fetch(`${base}/login`, {
      method: "POST",
      body: new URLSearchParams({ csrf: await a.csrf(), name: "ada", password: DEMO_USERS.ada }),
    });
    expect(cookieless.status).toBe(403);
    await a.login("ada", "wrong");
    const { text } = await a.page();
    expect(text).toContain("Wrong name or password.");
    expect(text).toContain("<h1>Log in</h1>");
  });

  it("logout destroys the session; replaying its cookie finds nobody", async () => {
    const a = browser(base, "A");
    await a.login("ada", DEMO_USERS.ada);
    const stolen = a.cookieHeader();
    const out = await a.post("/logout", { csrf: await a.csrf() });
    expect(out.status).toBe(303);
    expect(a.jar.size).toBe(0);
    const replay = await fetch(`${base}/`, { headers: { cookie: stolen } });
    expect(await replay.text()).toContain("<h1>Log in</h1>");
  });

  it("sends the cookie HttpOnly with SameSite, and pages with a strict CSP", async () => {
    const res = await fetch(`${base}/`);
    expect(res.headers.getSetCookie()[0]).toMatch(/HttpOnly; SameSite=Lax/);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });
});
