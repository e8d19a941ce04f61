import type { SerializeOptions, Session, SessionData } from "@kvsession/session";
import {
  checkSerializeOption,
  createSessionsFrom,
  SessionBusyError,
  SessionConfigError,
  SessionError,
} from "@kvsession/session";
import type { Context, MiddlewareHandler } from "hono";
import { retryResponse, withResponse } from "./errors.js";
import type { HonoSessionOptions } from "./options.js";

/** What the middleware puts in the context: type your app as `Hono<{ Variables: SessionVariables }>`. */
export interface SessionVariables<D extends object = SessionData> {
  session: Session<D>;
}

/** Requests a session middleware already serves, and whether it serialises them. */
const owners = new WeakMap<Context, { serialize: boolean | SerializeOptions | undefined }>();
const noop = () => {};
const isOn = (s: boolean | SerializeOptions | undefined) => s !== undefined && s !== false;

const NESTED =
  "a session middleware with serialize: true runs after another session middleware that already opened this request's session unserialised: register the serialised one (e.g. on its route group) before the app-wide one";

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
 * Ends a request whose session call failed without writing its changes: they are dropped first,
 * so the commit writes nothing but the end of a serialised hold (and a request that waited in vain
 * holds nothing). In the background: the error response does not wait for a store that just failed.
 */
function release(s: Session<object>, err: SessionError): void {
  if (err instanceof SessionBusyError) return;
  s.reload()
    .catch(noop)
    .then(() => s.commit())
    .catch(noop);
}

/** Splits the middleware's own `serialize` (a core you built) from the core's options, and builds the core. */
function setUp<D extends object>(options: HonoSessionOptions<D>) {
  const o = (options ?? {}) as Record<string, unknown>;
  if (!("sessions" in o) || o.serialize === undefined)
    return {
      sessions: createSessionsFrom<D>(options as never, "@kvsession/session-hono"),
      serialize: undefined,
    };
  const { serialize, ...rest } = o;
  return {
    sessions: createSessionsFrom<D>(rest as never, "@kvsession/session-hono"),
    serialize: checkSerializeOption(serialize, "options.serialize"),
  };
}

/**
 * Session middleware for Hono on Web standards (Node via @hono/node-server, Bun,
 * Deno, Workers): `c.get("session")` is the core `Session`, lazily loaded, and is
 * committed after the handler ran, its Set-Cookie appended to the response. A session
 * error a retry can fix answers 503 with `Retry-After`. `serialize` serialises the
 * requests of one session through this middleware (mount one on a route group).
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
  const { sessions, serialize } = setUp(options);
  return async (c, next) => {
    const owner = owners.get(c);
    if (owner !== undefined) {
      // Mounted twice on one request (app-wide and on a route group): the first one serves it.
      if (isOn(serialize) && !isOn(owner.serialize)) throw new SessionConfigError(NESTED);
      return next();
    }
    owners.set(c, { serialize });
    const s = sessions.open({
      cookieHeader: c.req.header("cookie"),
      // Behind @hono/node-server the URL says https only on a TLS server; proxies are `trustProxy`'s job.
      secure: c.req.url.startsWith("https:"),
      forwardedProto: c.req.header("x-forwarded-proto"),
      serialize,
    });
    c.set("session", s);
    await next();
    // A session call failed in the handler; Hono's onError already answered it (c.error).
    if (c.error instanceof SessionError) {
      release(s, c.error);
      // Hono's default handler answers an error it knows nothing about with a 500: a retry can fix this one.
      const retry = c.res.status === 500 ? retryResponse(c.error) : undefined;
      if (retry) c.res = retry;
      return;
    }
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
