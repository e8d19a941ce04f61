import type { Session, SessionData } from "@kvsession/session";
import { createSessionsFrom } from "@kvsession/session";
import type { Context, MiddlewareHandler } from "hono";
import { withResponse } from "./errors.js";
import type { HonoSessionOptions } from "./options.js";

/** What the middleware puts in the context: type your app as `Hono<{ Variables: SessionVariables }>`. */
export interface SessionVariables<D extends object = SessionData> {
  session: Session<D>;
}

/** Methods whose failures must reach Hono's error handler as a 503 (the rest do no I/O). */
const ASYNC = [
  "get",
  "has",
  "all",
  "flashes",
  "regenerate",
  "destroy",
  "reload",
  "save",
  "bindUser",
  "userId",
  "exists",
] as const;

/**
 * Gives this request's session errors a 503 response, in place: the object must stay the one
 * the core made, or `listUserSessions({ current })` and `revokeUser({ except })` cannot recognise it.
 */
function guard<D extends object>(s: Session<D>, failed: { yes: boolean }): Session<D> {
  const m = s as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const name of ASYNC) {
    const f = m[name]!;
    m[name] = (...a) =>
      f.apply(s, a).catch((err: unknown) => {
        failed.yes = true;
        throw withResponse(err);
      });
  }
  return s;
}

/**
 * Through `c.header()`, not `c.res.headers`: Hono then copies a finalized response itself
 * (immutable headers of Response.redirect()/fetch() included), and a later middleware's own
 * copy keeps our cookies (on @hono/node-server, editing `c.res.headers` directly was lost).
 */
function appendHeaders(c: Context, setCookie: string[], cacheControl: string | undefined): void {
  for (const v of setCookie) c.header("set-cookie", v, { append: true });
  if (cacheControl) c.header("cache-control", cacheControl);
}

/**
 * Session middleware for Hono on Web standards (Node via @hono/node-server, Bun,
 * Deno, Workers): `c.get("session")` is the core `Session`, lazily loaded, and is
 * committed after the handler ran, its Set-Cookie appended to the response.
 *
 * @example
 * import { Hono } from "hono";
 * import { createMemoryStore } from "@kvsession/kv";
 * import { session, type SessionVariables } from "@kvsession/session-hono";
 *
 * const app = new Hono<{ Variables: SessionVariables }>();
 * app.use(session({ store: createMemoryStore(), secrets: [process.env.SESSION_SECRET!] }));
 * app.get("/", async (c) => {
 *   const s = c.get("session");
 *   const views = ((await s.get("views")) as number | undefined) ?? 0;
 *   s.set("views", views + 1);
 *   return c.text(`views: ${views + 1}`);
 * });
 */
export function session<D extends object = SessionData>(
  options: HonoSessionOptions<D>,
): MiddlewareHandler<{ Variables: SessionVariables<D> }> {
  const sessions = createSessionsFrom(options, "@kvsession/session-hono");
  return async (c, next) => {
    const failed = { yes: false };
    const s = guard(
      sessions.open({
        cookieHeader: c.req.header("cookie"),
        // Behind @hono/node-server the URL says https only on a TLS server; proxies are `trustProxy`'s job.
        secure: c.req.url.startsWith("https:"),
        forwardedProto: c.req.header("x-forwarded-proto"),
      }),
      failed,
    );
    c.set("session", s);
    await next();
    // The store already failed in this request: the 503 goes out without a second attempt.
    if (failed.yes) return;
    let result: Awaited<ReturnType<Session<D>["commit"]>>;
    try {
      result = await s.commit();
    } catch (err) {
      throw withResponse(err);
    }
    if (result.setCookie.length > 0 || result.headers["cache-control"])
      appendHeaders(c, result.setCookie, result.headers["cache-control"]);
  };
}
