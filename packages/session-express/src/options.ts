import type { IncomingMessage } from "node:http";
import {
  type CookieOptions,
  createSessionsFrom,
  DEFAULT_IDLE_TIMEOUT_MS,
  type SameSite,
  type SealedSessions,
  type SealedSessionsOptions,
  SessionConfigError,
  type Sessions,
  type SessionsOptions,
} from "@kvsession/session";

const CALLER = "@kvsession/session-express";

/** The cookie options: the core's, plus the express-session names that have a safe meaning here. */
export interface KvCookieOptions extends Omit<CookieOptions, "sameSite"> {
  /**
   * express-session's cookie lifetime, in ms: the cookie becomes persistent and the session lasts
   * this long after its creation (`absoluteTimeoutMs`), or, with `rolling: true`, this long after
   * its last request (`idleTimeoutMs`). `null`: a browser-session cookie (the default).
   */
  maxAge?: number | null | undefined;
  /** The session cookie is always HttpOnly: only `true` is accepted. */
  httpOnly?: true | undefined;
  /** express-session's spellings are accepted too: `"lax"`, `"strict"`, `"none"`, `true` (Strict), `"auto"` (None, sent as Lax on plain HTTP). */
  sameSite?: SameSite | "lax" | "strict" | "none" | "auto" | true | undefined;
}

/** What the Express adapter adds to the core's options. */
export interface ExpressAdapterOptions {
  /**
   * Skip requests for which this returns true: no `req.session`, no cookie
   * parsing, no store I/O. Mounting the middleware only on the routes that use
   * sessions (`app.get("/cart", session, handler)`) does the same the Express way.
   */
  skip?: ((req: IncomingMessage) => boolean) | undefined;
  /** express-session's name for `cookie.name`. */
  name?: string | undefined;
  /** With `cookie.maxAge`: the session lasts `maxAge` after its last request rather than after its creation. */
  rolling?: boolean | undefined;
  /** Only `false`, which is what happens anyway: a request writes only the keys it changed. */
  resave?: false | undefined;
  /** Only `false`, which is what happens anyway: a session is stored once something is set in it. */
  saveUninitialized?: false | undefined;
  /** Only `"keep"`, which is what happens anyway: assigning `req.session` does not end the session. */
  unset?: "keep" | undefined;
  cookie?: KvCookieOptions | undefined;
}

type WithCookie<T> = Omit<T, "cookie"> & ExpressAdapterOptions;
/** `kvSession()`'s options for server-side sessions on a store (the common case). */
export type KvSessionOptions = WithCookie<SessionsOptions & { sealed?: false | undefined }>;
/** Sealed sessions: the data travels encrypted in the cookie. */
export type KvSessionSealedOptions = WithCookie<SealedSessionsOptions & { sealed: true }>;
/** A core built elsewhere (shared with an admin job, say): only `skip` may come with it. */
export type KvSessionCoreOptions<S extends Sessions | SealedSessions = Sessions | SealedSessions> = {
  sessions: S;
  skip?: ((req: IncomingMessage) => boolean) | undefined;
};

/**
 * Every form `kvSession()` takes: those of `createSessionsFrom` (a store, `sealed: true`, or a core),
 * plus `skip` and the express-session options that have a safe meaning here. Any other
 * express-session option is refused at start-up with a hint.
 */
export type KvSessionAnyOptions = KvSessionOptions | KvSessionSealedOptions | KvSessionCoreOptions;

/** What the middleware needs besides the core, resolved once at start-up. */
export interface AdapterConfig {
  sessions: Sessions | SealedSessions;
  skip: ((req: IncomingMessage) => boolean) | undefined;
  /** The cookie's Path when the app set one: requests outside it get no session, as with express-session. */
  path: string | undefined;
  /** The cookie is Secure whatever the request (`cookie.secure: true`). */
  alwaysSecure: boolean;
  /** Believe `X-Forwarded-Proto` (`trustProxy: true`). */
  trustProxy: boolean;
  /** Serialised mode is possible: a store with compare-and-set. */
  canSerialize: boolean;
  /** Every request is serialised (`serialize` in the options). */
  serializeAll: boolean;
  /** The core came as `{ sessions }`, built by the app. */
  ownCore: boolean;
  /** What `req.session.cookie` reports. */
  cookie: {
    /** The lifetime the app configured; null: a browser-session cookie; undefined: persistent, the core's default lifetime. */
    lifetimeMs: number | null | undefined;
    path: string | undefined;
    domain: string | undefined;
    sameSite: SameSite | undefined;
    secure: boolean | "auto" | undefined;
  };
}

/** express-session options with no safe meaning here, and what to do instead. */
const REFUSED: Record<string, (value: unknown) => string | undefined> = {
  genid: () => "session IDs are always 256 random bits from the CSPRNG; remove the option",
  key: () => "use `name` (or `cookie.name`)",
  proxy: () =>
    'HTTPS is read from Express\'s req.secure, so `app.set("trust proxy", …)` applies; or pass `trustProxy: true` to believe X-Forwarded-Proto',
  resave: (v) =>
    v === false
      ? undefined
      : "a request writes only the keys it changed, as a patch; `resave: true` would write back the whole loaded session and lose concurrent changes: remove the option",
  saveUninitialized: (v) =>
    v === false
      ? undefined
      : "a session is stored only once something is set in it (an empty session for every visitor would fill the store): remove the option",
  unset: (v) =>
    v === "keep"
      ? undefined
      : "call `req.session.destroy()` to end a session; assigning req.session does not",
  rolling: (v) => (typeof v === "boolean" ? undefined : "must be true or false"),
};
const REFUSED_COOKIE: Record<string, (value: unknown) => string | undefined> = {
  expires: (v) =>
    v === null
      ? undefined
      : "a fixed date would end every session at once; use `cookie.maxAge` (ms), as express-session's own docs advise",
  httpOnly: (v) =>
    v === true
      ? undefined
      : "the session cookie is always HttpOnly: page scripts must never read the session ID",
  partitioned: () => "not supported: the session cookie is first-party",
  priority: () => "not supported; remove the option",
  signed: () => "the cookie is always signed (HMAC-SHA-256); remove the option",
  encode: () => "the cookie value is always base64url; remove the option",
};

const SAME_SITE: Record<string, SameSite> = {
  lax: "Lax",
  strict: "Strict",
  none: "None",
  // express-session's "auto": None over HTTPS, Lax over HTTP, which is what the core does with None.
  auto: "None",
};

function refuse(path: string, hint: string): never {
  throw new SessionConfigError(`${CALLER}: option "${path}": ${hint}`);
}

/**
 * Turns `kvSession()`'s options into the core's (through `createSessionsFrom`, so every mistake the
 * core knows fails at start-up with its hint) and the adapter's own settings. express-session's
 * options either map onto the core's or are refused with what to write instead: never ignored.
 */
export function resolveOptions(options: KvSessionAnyOptions): AdapterConfig {
  // The core's message for missing options ("needs options: { store, secrets }…").
  if (options === null || typeof options !== "object") createSessionsFrom(options, CALLER);
  const o: Record<string, unknown> = { ...options };
  const skip = o.skip;
  delete o.skip;
  if (skip !== undefined && typeof skip !== "function") refuse("skip", "must be a function of the request");
  for (const [key, check] of Object.entries(REFUSED)) {
    if (o[key] === undefined) continue;
    const hint = check(o[key]);
    if (hint !== undefined) refuse(key, hint);
  }
  const rolling = o.rolling === true;
  for (const key of ["resave", "saveUninitialized", "unset", "rolling"]) delete o[key];
  const store = o.store as { withPrefix?: unknown } | undefined;
  if (store !== undefined && store !== null && typeof store.withPrefix !== "function")
    refuse(
      "store",
      "express-session stores (connect-redis, connect-pg-simple…) cannot hold these sessions: pass a @kvsession/kv driver (createRedisStore, createPostgresStore…), or keep express-session and give it a kvsession driver through toExpressSessionStore",
    );

  let cookie: Record<string, unknown> | undefined;
  let note: string | undefined;
  let lifetimeMs =
    (o.cookie as { persistent?: unknown } | undefined)?.persistent === true ? o.absoluteTimeoutMs : null;
  if (o.cookie !== undefined) {
    if (o.cookie === null || typeof o.cookie !== "object") refuse("cookie", "must be an object");
    cookie = { ...(o.cookie as Record<string, unknown>) };
    for (const [key, check] of Object.entries(REFUSED_COOKIE)) {
      if (cookie[key] === undefined) continue;
      const hint = check(cookie[key]);
      if (hint !== undefined) refuse(`cookie.${key}`, hint);
      delete cookie[key];
    }
    const sameSite = cookie.sameSite;
    if (sameSite === true) cookie.sameSite = "Strict";
    else if (sameSite === false)
      refuse("cookie.sameSite", "the cookie always carries SameSite: Lax (the default), Strict or None");
    else if (typeof sameSite === "string" && SAME_SITE[sameSite] !== undefined)
      cookie.sameSite = SAME_SITE[sameSite];
    const maxAge = cookie.maxAge;
    delete cookie.maxAge;
    if (maxAge !== undefined && maxAge !== null) {
      if (typeof maxAge !== "number" || !Number.isSafeInteger(maxAge) || maxAge <= 0)
        refuse("cookie.maxAge", `must be a positive integer of ms, got ${String(maxAge)}`);
      if (cookie.persistent === false)
        refuse("cookie.maxAge", "makes the cookie persistent; `cookie.persistent: false` says the opposite");
      cookie.persistent = true;
      const timeout = rolling ? "idleTimeoutMs" : "absoluteTimeoutMs";
      if (o[timeout] !== undefined && o[timeout] !== maxAge)
        refuse(
          "cookie.maxAge",
          `sets ${timeout}${rolling ? " (with rolling: true)" : ""}, which is also given: keep one`,
        );
      o[timeout] = maxAge;
      note = `cookie.maxAge${rolling ? " with rolling: true" : ""} became ${timeout}`;
      // express-session's short lifetimes (a minute, say) are below the default idle timeout, which
      // must not outlast the session: it shrinks to the lifetime rather than failing at start-up.
      if (!rolling && o.idleTimeoutMs === undefined && maxAge < DEFAULT_IDLE_TIMEOUT_MS) {
        o.idleTimeoutMs = maxAge;
        note += " and idleTimeoutMs";
      }
      lifetimeMs = maxAge;
    }
  }
  if (o.name !== undefined) {
    if (typeof o.name !== "string") refuse("name", "must be a string");
    if (cookie?.name !== undefined && cookie.name !== o.name)
      refuse("name", "and `cookie.name` both name the cookie: keep one");
    cookie = { ...cookie, name: o.name };
    delete o.name;
  }
  if (cookie !== undefined) o.cookie = cookie;

  let sessions: Sessions | SealedSessions;
  try {
    sessions = createSessionsFrom(o as never, CALLER);
  } catch (err) {
    // A timeout the app never wrote must be traced back to the option it came from.
    if (note !== undefined && err instanceof SessionConfigError)
      throw new SessionConfigError(`${err.message} (${note})`);
    throw err;
  }
  const c = (o.cookie ?? {}) as Record<string, unknown>;
  const records = (sessions as { records?: { capabilities?: { compareAndSet?: boolean } } }).records;
  return {
    sessions,
    skip: skip as AdapterConfig["skip"],
    path: c.path as string | undefined,
    alwaysSecure: c.secure === true,
    trustProxy: o.trustProxy === true,
    canSerialize: records?.capabilities?.compareAndSet === true,
    serializeAll: o.serialize !== undefined && o.serialize !== false,
    ownCore: "sessions" in o,
    cookie: {
      lifetimeMs: lifetimeMs as number | null | undefined,
      path: c.path as string | undefined,
      domain: c.domain as string | undefined,
      sameSite: c.sameSite as SameSite | undefined,
      secure: c.secure as boolean | "auto" | undefined,
    },
  };
}
