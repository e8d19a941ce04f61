import type { IncomingMessage, ServerResponse } from "node:http";
import type { JsonValue } from "@kvsession/kv";
import {
  checkSerializeOption,
  type SealedSessions,
  type SerializeOptions,
  type Session,
  SessionConfigError,
  type Sessions,
} from "@kvsession/session";
import { commitBeforeHeaders } from "./commit-before-headers.js";
import { withStatus } from "./errors.js";
import {
  type AdapterConfig,
  type KvSessionAnyOptions,
  type KvSessionCoreOptions,
  type KvSessionOptions,
  type KvSessionSealedOptions,
  resolveOptions,
} from "./options.js";
import {
  type ExpressSession,
  flush,
  makeSessionObject,
  replaceData,
  type SessionContext,
  type SessionState,
  sessionState,
  setCookieMaxAge,
  unsavedChanges,
} from "./session-object.js";

export type {
  ExpressAdapterOptions,
  KvCookieOptions,
  KvSessionAnyOptions,
  KvSessionCoreOptions,
  KvSessionOptions,
  KvSessionSealedOptions,
} from "./options.js";

/** The request as the middleware sees it: Express's, or anything with `secure` and `headers`. */
export interface SessionRequestLike extends IncomingMessage {
  secure?: boolean;
  originalUrl?: string;
  session?: unknown;
  sessionID?: string | undefined;
}

type Handler = (req: SessionRequestLike, res: ServerResponse, next: (err?: unknown) => void) => void;

export type SessionMiddleware<S extends Sessions | SealedSessions = Sessions> = Handler & {
  /** The core behind the middleware: `revokeUser`, and for server-side sessions `listUserSessions`, `revokeSession`, `revokeAll`. */
  readonly sessions: S;
  /**
   * The same middleware in serialised mode, for the routes that need it: requests carrying the same
   * session run load → handler → commit one at a time (see the README). Mounted after the app-wide
   * middleware, it loads the session again under the lease (one more store read). Lease timings
   * (`{ leaseMs, waitMs, maxHoldMs }`) replace the app's for this route; a mistake in them throws a
   * `SessionConfigError` here, at start-up.
   *
   * @example
   * app.post("/cart", session.serialize({ waitMs: 2_000 }), (req, res) => {
   *   req.session.items = [...(req.session.items ?? []), req.body.item];
   *   res.sendStatus(204);
   * });
   */
  serialize(options?: true | SerializeOptions): Handler;
};

const TAKEN =
  "req.session is already set by an earlier middleware (express-session, cookie-session…): @kvsession/session-express would replace it. Mount one session middleware per route.";
const OTHER_INSTANCE =
  "serialize() comes from another kvSession() than the one that loaded this request's session: mount the same instance's serialize() (or only it) on the route";
const TOO_LATE =
  "serialize() runs after the session was used (save, regenerate, destroy…) in this request: mount it before whatever uses the session";

/**
 * Cookie path-match (RFC 6265, 5.1.4): the cookie comes back only under its Path, so a session
 * started outside it could never be found again.
 */
function underPath(url: string, path: string): boolean {
  const q = url.indexOf("?");
  const pathname = q === -1 ? url : url.slice(0, q);
  if (pathname === path) return true;
  if (!pathname.startsWith(path)) return false;
  return path.endsWith("/") || pathname[path.length] === "/";
}

/** The last X-Forwarded-Proto value: the one the proxy nearest to us wrote. */
function forwardedHttps(value: string | string[] | undefined): boolean {
  const joined = Array.isArray(value) ? value.join(",") : value;
  return typeof joined === "string" && joined.split(",").pop()!.trim().toLowerCase() === "https";
}

/**
 * express-session compatible middleware on `@kvsession/session`: `req.session`
 * holds the data as plain properties, with `id`, `cookie`, `regenerate`,
 * `destroy`, `reload`, `save` and `touch` (callback or promise), and
 * `req.sessionID`. A request without a verifying session cookie costs no store
 * I/O; one with a verifying cookie is loaded before your handler runs. Before the
 * response headers go out, the properties your handler changed are written as a
 * patch (concurrent requests changing different keys both survive) and the
 * Set-Cookie / Cache-Control headers added. A session error a retry can fix
 * (the store is down, the session kept changing, serialised mode timed out) goes
 * to `next(err)` with `err.status = 503`, `err.headers` holding `Retry-After`,
 * and a generic message (what failed is `err.cause`).
 *
 * Options: those of `createSessionsFrom` (`{ store, secrets, … }`, `{ sealed: true, secrets, … }`
 * or `{ sessions }`), `skip`, and the express-session options with a safe meaning here (`name`,
 * `cookie.maxAge`, `rolling`, `resave: false`, `saveUninitialized: false`); any other
 * express-session option fails at start-up with a hint.
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
export function kvSession(options: KvSessionOptions): SessionMiddleware<Sessions>;
export function kvSession(options: KvSessionSealedOptions): SessionMiddleware<SealedSessions>;
export function kvSession<S extends Sessions | SealedSessions>(
  options: KvSessionCoreOptions<S>,
): SessionMiddleware<S>;
export function kvSession(options: KvSessionAnyOptions): SessionMiddleware<Sessions | SealedSessions>;
export function kvSession(options: KvSessionAnyOptions): SessionMiddleware<Sessions | SealedSessions> {
  const config = resolveOptions(options);
  const { sessions } = config;
  const contexts = cookieContexts(config);

  const open = (req: SessionRequestLike, https: boolean, serialize: boolean | SerializeOptions | undefined) =>
    sessions.open({ cookieHeader: req.headers.cookie, secure: https, serialize });

  /** Express's req.secure (its `trust proxy`), or the socket; with `trustProxy`, X-Forwarded-Proto too. */
  const isHttps = (req: SessionRequestLike): boolean => {
    const forwarded = req.headers["x-forwarded-proto"];
    // Express's req.secure runs its trust-proxy logic on every call; without the header its answer is the socket's.
    const viaProxy = forwarded === undefined ? undefined : req.secure;
    const direct = viaProxy ?? (req.socket as { encrypted?: boolean }).encrypted === true;
    return direct || (config.trustProxy && forwardedHttps(forwarded));
  };

  const handle = (
    req: SessionRequestLike,
    res: ServerResponse,
    next: (err?: unknown) => void,
    serial: boolean | SerializeOptions,
  ) => {
    const current = req.session;
    const existing = sessionState(current);
    if (existing !== undefined) {
      // Mounted twice (app-wide and on a route): the first one owns the request.
      if (!serial || existing.serial) return next();
      if (existing.owner !== sessions) return next(new Error(OTHER_INSTANCE));
      if (existing.used) return next(new Error(TOO_LATE));
      return reopen(existing, next, serial);
    }
    if (config.skip?.(req)) return next();
    // Replacing another library's session would lose its data without a word.
    if (current !== undefined) return next(new Error(TAKEN));
    // As express-session: outside the cookie's Path the browser never sends the cookie back.
    if (config.path !== undefined && !underPath(req.originalUrl ?? req.url ?? "/", config.path))
      return next();
    const https = isHttps(req);
    let core: Session;
    try {
      core = open(req, https, serial === false ? undefined : serial);
    } catch (err) {
      return next(err);
    }
    const state: SessionState = {
      core,
      owner: sessions,
      https,
      serial: serial !== false || config.serializeAll,
      used: false,
      ctx: contexts[https ? 1 : 0],
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
          if (state.object === req.session) flush(state);
          const result = await state.core.commit();
          // A new ID was issued (first write, or a regenerate the handler did not see through req.session).
          if (result.setCookie.length > 0) {
            state.id = await state.core.handle();
            req.sessionID = state.id;
            // As express-session: a Secure cookie is never sent over plain HTTP, where the session
            // ID would cross the network in clear (and a browser drops it anyway).
            if (config.alwaysSecure && !https) return { setCookie: [], headers: {} };
          }
          return result;
        },
        (err) => next(withStatus(err)),
      );
      next();
    };

    // No Cookie header: nothing to verify or load.
    if (req.headers.cookie === undefined) return install({});
    load(state).then(install, (err) => next(withStatus(err)));
  };

  /** A route asked for serialised mode after an earlier mount loaded the session without it. */
  const reopen = (state: SessionState, next: (err?: unknown) => void, serial: true | SerializeOptions) => {
    const req = state.req as SessionRequestLike;
    const changes = unsavedChanges(state);
    const life = state.cookieMaxAgeSet ? state.cookieMaxAge : undefined;
    const lifeSet = state.cookieMaxAgeSet === true;
    try {
      state.core = open(req, state.https, serial);
    } catch (err) {
      return next(err);
    }
    state.serial = true;
    load(state).then(
      (data) => {
        replaceData(state, data);
        // What earlier middleware assigned stays assigned, now on top of the data read under the lease.
        for (const [key, value] of changes) {
          if (value === undefined) delete state.object[key];
          else state.object[key] = value;
        }
        if (lifeSet) setCookieMaxAge(state, "maxAge", life ?? null);
        req.sessionID = state.id;
        next();
      },
      (err) => next(withStatus(err)),
    );
  };

  const middleware: Handler = (req, res, next) => handle(req, res, next, config.serializeAll);
  const serialize = (options: true | SerializeOptions = true): Handler => {
    const timings = checkSerializeOption(options, "session.serialize()");
    if (timings === false)
      throw new SessionConfigError(
        "session.serialize() takes true or lease timings; to not serialise a route, do not mount it",
      );
    // At start-up, not on the first request: a store without compare-and-set cannot serialise.
    if (!config.canSerialize)
      throw new SessionConfigError(
        "serialize() needs server-side sessions on a store with compare-and-set (memory, SQLite, fs, Redis, PostgreSQL)",
      );
    // Whether such a core serialises every request is its own setting, unknown here: a route's
    // second load would then wait for the first one's hold on the session.
    if (config.ownCore)
      throw new SessionConfigError(
        "serialize() is for kvSession({ store, … }); a core passed as { sessions } decides serialised mode itself (createSessions({ serialize: true }))",
      );
    return (req, res, next) => handle(req, res, next, timings);
  };
  return Object.assign(middleware, { sessions, serialize });
}

/** Reads the session the cookie points at (no I/O when it does not verify) and its handle. */
async function load(state: SessionState): Promise<Record<string, JsonValue>> {
  const data = await state.core.all();
  state.id = await state.core.handle();
  state.cookieMaxAge = await state.core.cookieMaxAge();
  return data as Record<string, JsonValue>;
}

/** What `req.session.cookie` reports, for plain HTTP (index 0) and HTTPS (index 1) requests. */
function cookieContexts(config: AdapterConfig): [SessionContext, SessionContext] {
  let warned = false;
  const warnCookieWrite = () => {
    if (warned) return;
    warned = true;
    process.emitWarning(
      "req.session.cookie was assigned, but @kvsession/session-express sets the cookie's attributes app-wide; the assignment has no effect (assign req.session.cookie.maxAge or .expires to change this session's lifetime)",
      { code: "KVSESSION_COOKIE_WRITE" },
    );
  };
  const c = config.cookie;
  const ctx = (https: boolean): SessionContext => ({
    cookie: {
      httpOnly: true,
      path: c.path,
      domain: c.domain,
      sameSite: c.sameSite,
      secure: c.secure === true || (c.secure !== false && https),
      lifetimeMs: c.lifetimeMs,
    },
    warnCookieWrite,
  });
  return [ctx(false), ctx(true)];
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
  state.used = true;
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
 * changes made so far handed to it: for `flash`, `update`, `listUserSessions({ current })`
 * or `revokeUser(id, { except })`. Use `req.session.regenerate()`/`destroy()`
 * rather than the core's, so `req.session` follows.
 *
 * @example
 * await middleware.sessions.revokeUser(userId, { except: coreSession(req) });
 */
export function coreSession(req: { session?: unknown }): Session {
  const state = stateFor(req);
  state.used = true;
  flush(state);
  return state.core;
}
