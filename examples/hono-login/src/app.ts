import { randomBytes, timingSafeEqual } from "node:crypto";
import type { KvStore } from "@kvsession/kv";
import { createSessions, type Session, type Sessions } from "@kvsession/session";
import { type SessionVariables, session } from "@kvsession/session-hono";
import { type Context, Hono } from "hono";
import { html, page } from "./html.js";
import { createUsers } from "./users.js";

/** What this app keeps in a session. The user ID lives in the core's per-user binding, not here. */
export type LoginData = { csrf: string };
type Env = { Variables: SessionVariables<LoginData> };

export interface AppOptions {
  /** Any @kvsession/kv store (main.ts uses a SQLite file). */
  store: KvStore;
  /** Cookie signing secrets, each 32+ bytes. */
  secrets: string[];
  /** name -> password of the demo accounts. */
  users?: Record<string, string>;
  /** Believe X-Forwarded-Proto (only behind your own TLS proxy). */
  trustProxy?: boolean;
}

export const DEMO_USERS = { ada: "lovelace-1815", grace: "hopper-1906" };

/** The token forms must echo back; created (and stored in the session) on first use. */
async function csrfToken(s: Session<LoginData>): Promise<string> {
  const existing = await s.get("csrf");
  if (existing) return existing;
  const token = randomBytes(32).toString("base64url");
  s.set("csrf", token);
  return token;
}

function sameToken(a: string | undefined, b: unknown): boolean {
  if (typeof a !== "string" || typeof b !== "string") return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const when = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 19);

/**
 * The login demo: log in (a new session ID every time), see every session of
 * your account with its user agent, revoke any of them, or all but this one.
 *
 * @example
 * const { app } = createApp({ store: createMemoryStore(), secrets: [process.env.SESSION_SECRET!] });
 * serve({ fetch: app.fetch, port: 3001 });
 */
export function createApp(options: AppOptions): { app: Hono<Env>; sessions: Sessions<LoginData> } {
  const users = createUsers(options.users ?? DEMO_USERS);
  const sessions = createSessions<LoginData>({
    store: options.store,
    secrets: options.secrets,
    trustProxy: options.trustProxy ?? false,
  });
  const app = new Hono<Env>();

  app.use(async (c, next) => {
    await next();
    c.header(
      "content-security-policy",
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    );
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "same-origin");
  });
  app.use(session({ sessions }));

  /** Every POST must carry the session's CSRF token; a missing session has none, so nothing passes. */
  async function checkedForm(c: Context<Env>): Promise<Record<string, string> | undefined> {
    const body = await c.req.parseBody();
    const s = c.get("session");
    if (!(await s.exists()) || !sameToken(await s.get("csrf"), body.csrf)) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
    return out;
  }
  const forbidden = (c: Context<Env>) =>
    c.html(
      page(
        "Forbidden",
        html`<p>The form expired or did not come from this site. <a href="/">Start again</a>.</p>`,
      ),
      403,
    );

  app.get("/", async (c) => {
    const s = c.get("session");
    const user = await s.userId();
    const notes = [...(await s.flashes("info")), ...(await s.flashes("error"))];
    const flash = notes.map((n) => html`<p class="flash">${n}</p>`);
    const csrf = await csrfToken(s);
    if (user === undefined) {
      return c.html(
        page(
          "Log in",
          html`${flash}
<form method="post" action="/login">
  <input type="hidden" name="csrf" value="${csrf}">
  <p><label>Name <input name="name" autocomplete="username" required></label></p>
  <p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
  <p><button>Log in</button></p>
</form>
<p>Demo accounts: <code>ada</code> / <code>${DEMO_USERS.ada}</code>, <code>grace</code> / <code>${DEMO_USERS.grace}</code>.
Log in from two browsers to see both sessions below.</p>`,
        ),
      );
    }
    const list = await sessions.listUserSessions(user, { current: s });
    const rows = list.map((info) => {
      const ua = (info.meta as { ua?: string } | undefined)?.ua ?? "unknown";
      return html`<tr>
  <td>${when(info.createdAt)}</td><td>${when(info.lastSeenAt)}</td><td>${ua}</td>
  <td>${
    info.current
      ? html`<strong>this session</strong>`
      : html`<form class="inline" method="post" action="/sessions/revoke">
      <input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="handle" value="${info.handle}">
      <button>Revoke</button></form>`
  }</td></tr>`;
    });
    return c.html(
      page(
        `Hello, ${user}`,
        html`${flash}
<h2>Your active sessions (${list.length})</h2>
<table><thead><tr><th>Started (UTC)</th><th>Last seen (UTC)</th><th>Browser</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>
<p><form class="inline" method="post" action="/sessions/revoke-others">
  <input type="hidden" name="csrf" value="${csrf}"><button>Log out everywhere else</button></form>
<form class="inline" method="post" action="/logout">
  <input type="hidden" name="csrf" value="${csrf}"><button>Log out</button></form></p>`,
      ),
    );
  });

  app.post("/login", async (c) => {
    const form = await checkedForm(c);
    if (!form) return forbidden(c);
    const s = c.get("session");
    const name = form.name ?? "";
    if (!users.verify(name, form.password ?? "")) {
      s.flash("error", "Wrong name or password.");
      return c.redirect("/", 303);
    }
    // bindUser regenerates: the pre-login cookie (which an attacker may have planted) stops working.
    await s.bindUser(name, { ua: (c.req.header("user-agent") ?? "unknown").slice(0, 200) });
    s.set("csrf", randomBytes(32).toString("base64url"));
    s.flash("info", `Logged in as ${name}.`);
    return c.redirect("/", 303);
  });

  app.post("/logout", async (c) => {
    if (!(await checkedForm(c))) return forbidden(c);
    await c.get("session").destroy();
    return c.redirect("/", 303);
  });

  app.post("/sessions/revoke", async (c) => {
    const form = await checkedForm(c);
    if (!form) return forbidden(c);
    const s = c.get("session");
    const user = await s.userId();
    if (user === undefined) return c.redirect("/", 303);
    // revokeSession checks the handle belongs to this user: no revoking other people's sessions.
    const ok = await sessions.revokeSession(user, form.handle ?? "");
    s.flash("info", ok ? "That session is logged out." : "No such session (already gone?).");
    return c.redirect("/", 303);
  });

  app.post("/sessions/revoke-others", async (c) => {
    if (!(await checkedForm(c))) return forbidden(c);
    const s = c.get("session");
    const user = await s.userId();
    if (user === undefined) return c.redirect("/", 303);
    const n = await sessions.revokeUser(user, { except: s });
    s.flash("info", `Logged out ${n} other session${n === 1 ? "" : "s"}.`);
    return c.redirect("/", 303);
  });

  return { app, sessions };
}
