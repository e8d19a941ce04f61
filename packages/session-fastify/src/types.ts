import type { SealedSessions, SerializeOptions, SessionData, Sessions } from "@kvsession/session";
import type { LazySession } from "./lazy-session.js";
import type { Callback } from "./session-object.js";

/**
 * Declare your session's shape by merging into this interface:
 *
 * @example
 * declare module "@kvsession/session-fastify" {
 *   interface FastifySessionData { views: number; cart: string[] }
 * }
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in apps
export interface FastifySessionData {}

/**
 * How your app registers the plugin, declared once so `request.session` and `fastify.sessions`
 * get the types that match (and the plugin's options are checked against them): merge `lazy: true`
 * for the promise-based lazy API, `sealed: true` for sealed-cookie sessions.
 *
 * @example
 * declare module "@kvsession/session-fastify" {
 *   interface KvSessionTypes { lazy: true }
 * }
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in apps
export interface KvSessionTypes {}

/** The data type in use: yours once declared, any JSON under string keys until then. */
export type SessionShape = keyof FastifySessionData extends never ? SessionData : FastifySessionData;
export type Key = keyof SessionShape & string;

/** Whether the app declared `KvSessionTypes { lazy: true }`. */
export type IsLazy = KvSessionTypes extends { lazy: true } ? true : false;
/** Whether the app declared `KvSessionTypes { sealed: true }`. */
export type IsSealed = KvSessionTypes extends { sealed: true } ? true : false;

/** The methods of `request.session` (the default, non-lazy mode): those of @fastify/session. */
export interface FastifySessionMethods {
  /**
   * The session's public handle (a hash of the secret ID: what the store is keyed by and what
   * `listUserSessions`/`revokeSession` use); undefined while no session is stored for this request.
   */
  readonly sessionId: string | undefined;
  /** The value under `key` (the same as reading the property). */
  get<K extends Key>(key: K): SessionShape[K] | undefined;
  /** Sets the property; `undefined` deletes it. A method's name is refused. */
  set<K extends Key>(key: K, value: SessionShape[K] | undefined): void;
  /**
   * New session ID (the old one stops working at once) and, as in @fastify/session, a new empty
   * session holding only the fields listed; `regenerate(true)` keeps everything.
   */
  regenerate(callback: Callback): void;
  regenerate(keep: readonly Key[] | boolean, callback: Callback): void;
  regenerate(keep?: readonly Key[] | boolean): Promise<void>;
  /** Deletes the session in the store now; `request.session` is null afterwards and the response clears the cookie. */
  destroy(callback: Callback): void;
  destroy(): Promise<void>;
  /** Drops this request's unsaved changes and reads the stored session again. */
  reload(callback: Callback): void;
  reload(): Promise<void>;
  /** Writes the changes now (the plugin does it anyway before the response goes out). */
  save(callback: Callback): void;
  save(): Promise<void>;
  /** Refreshes the last-seen time at commit even if throttling would skip it. */
  touch(): void;
  /** Whether a property changed since the session was loaded or last saved. */
  isModified(): boolean;
  /** Whether `save()` wrote the session in this request. */
  isSaved(): boolean;
  /**
   * As in @fastify/session, `maxAge` (ms, or null) and `expires` (a Date, or null) here set this
   * session's cookie lifetime (see `cookie`); the other cookie attributes are app-wide (the
   * plugin's `cookie` option) and get a one-time warning.
   */
  options(opts: Record<string, unknown>): void;
  /**
   * This session's cookie lifetime, as @fastify/session's `request.session.cookie`: assigning
   * `maxAge`/`originalMaxAge` (ms, or `null` for a browser-session cookie) or `expires` (a Date, or
   * `null`) gives this session its own lifetime ("remember me"), kept with the session: later
   * responses and a `regenerate()` issue the cookie with it, re-sent with a fresh Max-Age whenever
   * the session is written. It never reaches past `absoluteTimeoutMs`; a longer, negative or
   * non-integer value is a `SessionDataError`. Reads give the session's lifetime, else the app's
   * (`null`: a browser-session cookie; `undefined`: a core you built, whose setting is its own).
   *
   * @example
   * await request.session.regenerate(true);
   * if (request.body.remember) request.session.cookie.maxAge = 30 * 24 * 3600_000;
   */
  readonly cookie: SessionCookie;
}

/** `request.session.cookie`: this session's cookie lifetime. */
export interface SessionCookie {
  maxAge: number | null | undefined;
  originalMaxAge: number | null | undefined;
  expires: Date | null | undefined;
}

/**
 * `request.session` in the default mode: the data as plain properties (read and assign them
 * synchronously, as with @fastify/session) plus @fastify/session's methods.
 */
export type FastifySession = FastifySessionMethods &
  (keyof FastifySessionData extends never ? { [key: string]: unknown } : Partial<FastifySessionData>);

/** What `request.session` is, by the declared mode. */
export type RequestSessionOf = IsLazy extends true ? LazySession : FastifySession;

/** What `fastify.sessions` is, by the declared mode. */
export type FastifySessions = IsSealed extends true ? SealedSessions<SessionShape> : Sessions<SessionShape>;

/** Per-route session settings, in the route's `config`. */
export interface RouteSessionConfig {
  /**
   * Serialise this route's requests with the others of their session (`true`, or lease timings
   * `{ leaseMs, waitMs, maxHoldMs }` in place of the app's), or not (`false`), whatever the plugin's
   * `serialize` says. A mistake is a `SessionConfigError` when the route is added. See the README's
   * "Serialised mode".
   *
   * @example
   * app.post("/cart", { config: { session: { serialize: { waitMs: 2_000 } } } }, handler);
   */
  serialize?: boolean | SerializeOptions;
}

declare module "fastify" {
  interface FastifyRequest {
    /**
     * This request's session (kvsession). By default loaded before your hooks and handler when the
     * request carries a valid session cookie; with `lazy: true`, opened on first use.
     */
    readonly session: RequestSessionOf;
  }
  interface FastifyInstance {
    /** The session core: `listUserSessions`, `revokeUser`, `revokeSession`, `revokeAll` (sealed mode: `revokeUser`). */
    sessions: FastifySessions;
  }
  interface FastifyContextConfig {
    /** @kvsession/session-fastify's settings for this route. */
    session?: RouteSessionConfig;
  }
}
