import type { IncomingMessage, ServerResponse } from "node:http";
import type { JsonValue } from "@kvsession/kv";
import { createSessions, type Session, type Sessions, type SessionsOptions } from "@kvsession/session";
import { commitBeforeHeaders } from "./commit-before-headers.js";
import { withStatus } from "./errors.js";
import { hookRequestProto } from "./request-session.js";
import {
  type ExpressSession,
  flush,
  makeSessionObject,
  type SessionContext,
  type SessionState,
  sessionState,
} from "./session-object.js";

/** The request as the middleware sees it: Express's, or anything with `secure` and `headers`. */
export interface SessionRequestLike extends IncomingMessage {
  secure?: boolean;
  session?: unknown;
  sessionID?: string | undefined;
}

export type SessionMiddleware = ((
  req: SessionRequestLike,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void) & {
  /** The core behind the middleware: `revokeUser`, `listUserSessions`, `revokeSession`, `revokeAll`. */
  readonly sessions: Sessions;
};

export interface KvSessionOptions extends SessionsOptions {
  /**
   * Skip requests for which this returns true: no `req.session`, no cookie
   * parsing, no store I/O. Mounting the middleware only on the routes that use
   * sessions (`app.get("/cart", session, handler)`) does the same the Express way.
   */
  skip?: (req: SessionRequestLike) => boolean;
}

const isOurs = (value: unknown) => sessionState(value) !== undefined;

const TAKEN =
  "req.session is already set by an earlier middleware (express-session, cookie-session…): @kvsession/session-express would replace it. Mount one session middleware per route.";

/**
 * express-session compatible middleware on `@kvsession/session`: `req.session`
 * holds the data as plain properties, with `id`, `cookie`, `regenerate`,
 * `destroy`, `reload`, `save` and `touch` (callback or promise), and
 * `req.sessionID`. A request without a verifying session cookie costs no store
 * I/O; one with a verifying cookie is loaded before your handler runs. Before the
 * response headers go out, the properties your handler changed are written as a
 * patch (concurrent requests changing different keys both survive) and the
 * Set-Cookie / Cache-Control headers added. A store failure goes to `next(err)`
 * with `err.status = 503` and the message "Session store unavailable" (what failed is `err.cause`).
 *
 * @example
 * import express from "express";
 * import { createSqliteStore } from "@kvsession/kv-sqlite";
 * import { kvSession } from "@kvsession/session-express";
 *
 * const app = express();
 * app.use(kvSession({ store: createSqliteStore({ path: "sessions.db" }), secrets: [process.env.SESSION_SECRET!] }));
 * app.get("/", (req, res) => {
 *   req.session.views = (req.session.views ?? 0) + 1;
 *   res.send(`views: ${req.session.views}`);
 * });
 */
export function kvSession(options: KvSessionOptions): SessionMiddleware {
  const sessions = createSessions(options);
  const lifetimeMs = options.cookie?.persistent ? (options.absoluteTimeoutMs ?? 12 * 60 * 60_000) : null;
  const cookieMode = options.cookie?.secure ?? "auto";
  const sameSite = options.cookie?.sameSite ?? "Lax";
  const path = options.cookie?.path ?? "/";
  let warned = false;
  const warnCookieWrite = () => {
    if (warned) return;
    warned = true;
    process.emitWarning(
      "req.session.cookie.maxAge/expires were assigned, but @kvsession/session-express sets the cookie lifetime app-wide (cookie.persistent, absoluteTimeoutMs); the assignment has no effect",
      { code: "KVSESSION_COOKIE_WRITE" },
    );
  };
  const contexts = new Map<boolean, SessionContext>();
  for (const secure of [false, true])
    contexts.set(secure, {
      cookie: {
        httpOnly: true,
        path,
        secure: cookieMode === "auto" ? secure : cookieMode,
        sameSite,
        lifetimeMs,
      },
      warnCookieWrite,
    });

  const middleware = (req: SessionRequestLike, res: ServerResponse, next: (err?: unknown) => void) => {
    hookRequestProto(req, isOurs);
    const current = req.session;
    // Mounted twice (app-wide and on a route): the first one owns the request.
    if (sessionState(current) !== undefined) return next();
    if (options.skip?.(req)) return next();
    // Replacing another library's session would lose its data without a word.
    if (current !== undefined) return next(new Error(TAKEN));
    // Express's req.secure runs its trust-proxy logic on every call; without an X-Forwarded-Proto
    // header its answer is the socket's, so only ask it when the header is there.
    const viaProxy = req.headers["x-forwarded-proto"] === undefined ? undefined : req.secure;
    const secure = viaProxy ?? (req.socket as { encrypted?: boolean }).encrypted === true;
    // Express resolved `trust proxy` into req.secure already: never hand the core the raw header.
    const core = sessions.open({ cookieHeader: req.headers.cookie, secure });
    const state: SessionState = {
      core,
      ctx: contexts.get(secure)!,
      req,
      object: undefined as unknown as ExpressSession,
      snapshot: new Map(),
      destroyed: false,
      id: undefined,
    };

    const install = (data: Record<string, JsonValue>) => {
      req.session = makeSessionObject(state, data);
      req.sessionID = state.id;
      commitBeforeHeaders(
        res,
        async () => {
          if (req.session === state.object) flush(state);
          const result = await core.commit();
          // A new ID was issued (first write, or a regenerate the handler did not see through req.session).
          if (result.setCookie.length > 0) {
            state.id = await core.handle();
            req.sessionID = state.id;
          }
          return result;
        },
        (err) => next(withStatus(err)),
      );
      next();
    };

    // No Cookie header: nothing to verify or load.
    if (req.headers.cookie === undefined) return install({});
    // Without a verifying cookie this resolves with no I/O; with one it reads the record.
    // One chain, so a failure of either call reaches next(err) rather than an unhandled rejection.
    core
      .all()
      .then(async (data) => {
        state.id = await core.handle();
        return data as Record<string, JsonValue>;
      })
      .then(install, (err) => next(withStatus(err)));
  };
  return Object.assign(middleware, { sessions }) as SessionMiddleware;
}

function stateFor(req: { session?: unknown }): SessionState {
  const state = sessionState(req.session);
  if (state === undefined)
    throw new TypeError("req.session is not a kvsession session: is the kvSession middleware mounted here?");
  return state;
}

/**
 * Login: a new session ID (fixation defence) bound to `userId`, keeping the
 * data, so `sessions.revokeUser(userId)` can log the user out everywhere.
 *
 * @example
 * await bindUser(req, user.id, { agent: req.get("user-agent") });
 */
export async function bindUser(req: { session?: unknown }, userId: string, meta?: JsonValue): Promise<void> {
  const state = stateFor(req);
  flush(state);
  await state.core.bindUser(userId, meta);
  state.id = await state.core.handle();
  (state.req as SessionRequestLike).sessionID = state.id;
}

/**
 * The user the session is bound to by `bindUser`, or undefined.
 *
 * @example
 * const userId = await sessionUserId(req);
 */
export async function sessionUserId(req: { session?: unknown }): Promise<string | undefined> {
  return stateFor(req).core.userId();
}

/**
 * The `@kvsession/session` object behind `req.session`, with the plain-property
 * changes made so far handed to it: for `flash`, `listUserSessions({ current })`
 * or `revokeUser(id, { except })`. Use `req.session.regenerate()`/`destroy()`
 * rather than the core's, so `req.session` follows.
 *
 * @example
 * await middleware.sessions.revokeUser(userId, { except: coreSession(req) });
 */
export function coreSession(req: { session?: unknown }): Session {
  const state = stateFor(req);
  flush(state);
  return state.core;
}
