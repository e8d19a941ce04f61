import { randomBytes, timingSafeEqual } from "node:crypto";
import type { KvStore } from "@kvsession/kv";
import type { Sessions } from "@kvsession/session";
import {
  bindUser,
  coreSession,
  type ExpressSession,
  kvSession,
  sessionUserId,
} from "@kvsession/session-express";
import express from "express";
import { createAccounts } from "./accounts.js";
import { page } from "./html.js";
import { createThrottle, LOGIN_LIMITS } from "./throttle.js";

/**
 * What this app keeps in the session (server-side: the cookie only holds a signed random ID).
 * Who is logged in is the user the session is bound to (`bindUser`): never the PIN.
 */
export interface PinSession {
  csrf?: string;
  notice?: string;
  /** A display name the visitor chose, kept in the session (the PIN never is). */
  name?: string;
}

export interface AppOptions {
  /** Any @kvsession/kv store: sessions live under "sess:", accounts under "accounts:", login throttling under "throttle:". */
  store: KvStore;
  /** Session secrets (the first signs); each at least 32 bytes. */
  secrets: string[];
  /** Cookie `Secure`: "auto" (default) follows the request; behind a TLS proxy also set `trustProxy`. */
  secureCookie?: "auto" | boolean;
  /** Express "trust proxy" setting (e.g. "loopback"), so `req.secure` and `req.ip` believe the proxy's headers. */
  trustProxy?: string | boolean;
  /** Idle timeout of a session in ms (default 30 minutes). */
  idleTimeoutMs?: number;
  /** The clock login throttling reads (default `Date.now`). */
  now?: () => number;
}

const PIN = /^\d{4}$/;
// No control or unassigned characters: a name is shown on the page and used as a store key.
const NAME = /^[^\p{C}]{1,40}$/u;

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

type Req = express.Request & { session: ExpressSession & PinSession };

/**
 * The PIN demo: log in with a name and a 4-digit PIN (the first login of a name registers
 * it; a new session ID, bound to the name), log out, and log out everywhere. Forms POST with
 * a CSRF token kept in the session; PIN guessing is throttled per name and per IP.
 *
 * @example
 * const { app } = createApp({ store: createSqliteStore({ path: "pin.db" }), secrets: [process.env.SESSION_SECRET!] });
 * app.listen(3000);
 */
export function createApp(options: AppOptions): { app: express.Express; sessions: Sessions } {
  const sessions = kvSession({
    store: options.store,
    secrets: options.secrets,
    cookie: { secure: options.secureCookie ?? "auto" },
    idleTimeoutMs: options.idleTimeoutMs,
  });
  const accounts = createAccounts(options.store);
  const throttle = createThrottle(options.store, options.now ?? Date.now);
  const app = express();
  if (options.trustProxy !== undefined) app.set("trust proxy", options.trustProxy);
  app.disable("x-powered-by");
  app.use((_req, res, next) => {
    res.set({
      "content-security-policy":
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      // Every page is someone's: who is logged in, their CSRF token. No cache may keep one.
      "cache-control": "no-store",
    });
    next();
  });
  app.use(express.urlencoded({ extended: false, limit: "4kb" }));
  app.use(sessions);

  /** Every form carries the session's token; a cross-site POST cannot know it. */
  const csrfToken = (req: Req) => {
    req.session.csrf ??= randomBytes(24).toString("base64url");
    return req.session.csrf;
  };
  const checkCsrf: express.RequestHandler = (req, res, next) => {
    const sent = (req.body as Record<string, unknown> | undefined)?._csrf;
    const expected = (req as Req).session.csrf;
    if (typeof sent !== "string" || typeof expected !== "string" || !same(sent, expected)) {
      res
        .status(403)
        .type("text/plain")
        .send("Invalid or missing CSRF token: reload the page and try again.");
      return;
    }
    next();
  };
  const back = (req: Req, res: express.Response, notice?: string) => {
    if (notice !== undefined) req.session.notice = notice;
    res.redirect(303, "/");
  };
  const tooMany = (res: express.Response, retryAfterMs: number) => {
    const seconds = Math.ceil(retryAfterMs / 1000);
    res
      .status(429)
      .set("retry-after", String(seconds))
      .type("text/plain")
      .send(`Too many wrong PINs: try again in ${seconds} s.`);
  };

  app.get("/", async (req, res) => {
    const r = req as Req;
    const notice = r.session.notice;
    delete r.session.notice;
    const user = await sessionUserId(r);
    const active = user === undefined ? [] : await sessions.sessions.listUserSessions(user);
    res
      .type("html")
      .send(page({ csrf: csrfToken(r), user, activeSessions: active.length, notice, name: r.session.name }));
  });

  /** A display name kept in the session only: no account, no PIN (a PIN field sent along is ignored). */
  app.post("/profile", checkCsrf, (req, res) => {
    const r = req as Req;
    const raw = (req.body as Record<string, unknown>).name;
    const name = typeof raw === "string" ? raw.trim() : "";
    if (!NAME.test(name))
      return back(r, res, "A name is 1 to 40 characters, none of them control characters.");
    r.session.name = name;
    back(r, res, "Saved in the session (on the server).");
  });

  app.post("/login", checkCsrf, async (req, res) => {
    const r = req as Req;
    const { name: rawName, pin } = req.body as Record<string, unknown>;
    const name = typeof rawName === "string" ? rawName.trim() : "";
    if (!NAME.test(name))
      return back(r, res, "A name is 1 to 40 characters, none of them control characters.");
    if (typeof pin !== "string" || !PIN.test(pin)) return back(r, res, "A PIN is exactly 4 digits.");
    // Counted before the PIN is checked, so parallel guesses cannot outrun their own count.
    const ipKey = `ip:${req.ip ?? "unknown"}`;
    const nameKey = `name:${name}`;
    const byIp = await throttle.take(ipKey, LOGIN_LIMITS.perIp);
    if (!byIp.ok) return tooMany(res, byIp.retryAfterMs);
    const byName = await throttle.take(nameKey, LOGIN_LIMITS.perName);
    if (!byName.ok) return tooMany(res, byName.retryAfterMs);
    if ((await accounts.login(name, pin)) === "wrong-pin")
      return back(r, res, `The PIN does not match the one registered for “${name}”.`);
    await Promise.all([throttle.forget(nameKey), throttle.succeeded(ipKey)]);
    // A new session ID on login (fixation defence), bound to the user for "log out everywhere".
    await bindUser(r, name, { agent: String(req.get("user-agent") ?? "").slice(0, 200) });
    r.session.csrf = randomBytes(24).toString("base64url");
    back(r, res, `Logged in as ${name}.`);
  });

  app.post("/logout", checkCsrf, async (req, res) => {
    await (req as Req).session.destroy();
    res.redirect(303, "/");
  });

  app.post("/logout-everywhere", checkCsrf, async (req, res) => {
    const r = req as Req;
    const user = await sessionUserId(r);
    if (user === undefined) return back(r, res, "You are not logged in.");
    // Every other session of this user first, then this one.
    const others = await sessions.sessions.revokeUser(user, { except: coreSession(r) });
    await r.session.destroy();
    console.log(`log out everywhere: ${user} ended ${others + 1} session(s)`);
    res.redirect(303, "/");
  });

  app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = (err as { status?: number }).status ?? 500;
    if (status >= 500) console.error(err);
    res
      .status(status)
      .type("text/plain")
      .send(
        status === 503 ? "The session store is unavailable; try again shortly." : "Something went wrong.",
      );
  });

  return { app, sessions: sessions.sessions };
}
