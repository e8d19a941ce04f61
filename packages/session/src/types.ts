import type { JsonValue, KvStore } from "@kvsession/kv";
import type { SameSite } from "./cookie.js";
import type { Secret } from "./crypto.js";
import type { SerializeOptions } from "./lease.js";
import type { LegacyOptions } from "./legacy.js";

/** The shape of session data: JSON values under top-level keys. */
export type SessionData = Record<string, JsonValue>;

/** What an adapter passes for each request. Nothing here causes I/O. */
export interface OpenInput {
  /** The raw Cookie request header (string, string[] or undefined: malformed input never throws). */
  cookieHeader?: unknown;
  /** Whether the request reached us over HTTPS (the adapter knows: `req.socket.encrypted`). */
  secure?: boolean | undefined;
  /** The X-Forwarded-Proto header value; read only when `trustProxy` is on. */
  forwardedProto?: string | string[] | undefined;
  /**
   * Serialise this request with the others of its session (see `SessionsOptions.serialize`); lease
   * timings turn it on with those timings for this request. Default: the app's setting.
   */
  serialize?: boolean | SerializeOptions | undefined;
}

/** What `commit()` hands back to the adapter: header values to append, verbatim. */
export interface CommitResult {
  /** Set-Cookie header values, one per cookie (never joined: a comma is legal inside Expires). */
  setCookie: string[];
  /** Extra response headers; `cache-control: no-store` whenever a session cookie is set or cleared. */
  headers: { "cache-control"?: "no-store" };
  /**
   * `untouched`: no I/O at all; `unchanged`: read, nothing to write; `saved`/`created`: the changes are
   * stored (acknowledged); `destroyed`: destroy() ran; `gone`: the session was destroyed or regenerated
   * by a concurrent request, so this request's changes were dropped rather than resurrect it.
   */
  outcome: "untouched" | "unchanged" | "saved" | "created" | "destroyed" | "gone";
}

export interface CookieOptions {
  /** Base name; `__Host-` (secure, no Domain, Path=/) or `__Secure-` (secure with a Domain) is prepended. Default "sid". */
  name?: string;
  /** Default "/". */
  path?: string;
  /** Default: none (host-only cookie, which allows the `__Host-` prefix). */
  domain?: string;
  /** Default "Lax". "None" requires a secure request. */
  sameSite?: SameSite;
  /** `"auto"` (default): Secure when the request is HTTPS (see `trustProxy`). `true`: always; `false`: never (local HTTP only). */
  secure?: "auto" | boolean;
  /** Give the cookie a Max-Age equal to the remaining absolute lifetime. Default false: a browser-session cookie. */
  persistent?: boolean;
  /** Add the `__Host-`/`__Secure-` prefix on secure requests. Default true. */
  prefix?: boolean;
}

/** One of a user's live sessions, as `listUserSessions` reports it. */
export interface UserSessionInfo {
  /** The hash of the session ID (what the store is keyed by): safe to show and to pass to `revokeSession`. */
  handle: string;
  createdAt: number;
  lastSeenAt: number;
  meta: JsonValue | undefined;
  /** This is the session of the request passed as `current`. */
  current: boolean;
}

/**
 * One request's view of a session. Reads load lazily; writes are recorded and
 * applied by `commit()` as a patch on top of whatever the store holds then.
 *
 * Only `set`/`delete` are tracked: mutating an object returned by `get` changes
 * nothing until it is passed to `set` again.
 */
export interface Session<D extends object = SessionData> {
  get<K extends keyof D & string>(key: K): Promise<D[K] | undefined>;
  has(key: keyof D & string): Promise<boolean>;
  /** All data, with this request's pending changes applied. */
  all(): Promise<Partial<D>>;
  /** Records a change; no I/O. `undefined` deletes. Keys `__proto__`, `constructor`, `prototype` are refused. */
  set<K extends keyof D & string>(key: K, value: D[K] | undefined): void;
  delete(key: keyof D & string): void;
  /**
   * Records a change computed from the value stored when the change is written, not from this
   * request's read: `update("visits", (n) => (n ?? 0) + 1)` never loses an increment to a concurrent
   * request, without serialised mode. `fn` may run more than once (on a retry): keep it pure.
   * Returning `undefined` deletes the key.
   *
   * @example
   * session.update("cart", (items) => [...(items ?? []), "apple"]);
   */
  update<K extends keyof D & string>(key: K, fn: (current: D[K] | undefined) => D[K] | undefined): void;
  /** Queues a flash message for a later request. */
  flash(type: string, message: JsonValue): void;
  /** The flash messages of that type, removed once this request commits. */
  flashes(type: string): Promise<JsonValue[]>;
  /** New ID (the old one stops working at once); data kept unless `keepData: false`. */
  regenerate(options?: { keepData?: boolean }): Promise<void>;
  /** Deletes the session now; the response clears the cookie. */
  destroy(): Promise<void>;
  /** Drops this request's pending changes and reads the session again. */
  reload(): Promise<void>;
  /** Asks for the last-seen time (and the sealed cookie) to be refreshed at commit even if throttling would skip it. */
  touch(): void;
  /**
   * This session's own cookie lifetime ("remember me"), kept with the session (in its record, or in
   * the sealed cookie) so later responses and rotations issue the cookie with it. A number of ms:
   * a persistent cookie with that Max-Age, re-sent with a fresh Max-Age whenever the session is
   * written (a change, or the throttled last-seen refresh), and never reaching past the session's
   * absolute deadline; `null`: a browser-session cookie; `undefined`: back to the app's
   * `cookie.persistent`. The server-side timeouts still apply: the session ends after
   * `idleTimeoutMs` without a request and `absoluteTimeoutMs` after login, whatever the cookie says.
   * A value that is not a whole number of ms from 1 to `absoluteTimeoutMs` is a `SessionDataError`
   * (its message names `name`, what the app assigned, when an adapter gives it).
   *
   * @example
   * // absoluteTimeoutMs as long as the longest "remember me", browser-session cookies by default:
   * await session.bindUser(user.id);
   * if (form.remember === "on") session.setCookieMaxAge(30 * 24 * 3600_000);
   */
  setCookieMaxAge(ms: number | null | undefined, name?: string): void;
  /** This session's own cookie lifetime (see `setCookieMaxAge`), pending change included; `undefined`: the app's setting. */
  cookieMaxAge(): Promise<number | null | undefined>;
  /** Writes pending changes now (commit does it too). */
  save(): Promise<void>;
  /** Login: regenerates, then binds the session to `userId` with app-chosen metadata (e.g. the user agent). */
  bindUser(userId: string, meta?: JsonValue): Promise<void>;
  /** The user this session is bound to. */
  userId(): Promise<string | undefined>;
  /** Whether a stored (or sealed) session exists behind this request. */
  exists(): Promise<boolean>;
  /**
   * The session's handle: SHA-256 of its secret ID (base64url), safe to log and to pass to
   * `revokeSession`. Loads the session if needed (no I/O once loaded); undefined when there is none.
   */
  handle(): Promise<string | undefined>;
  /** Writes what changed and returns the headers for the response. Call once, at the end of the request. */
  commit(): Promise<CommitResult>;
}

export interface CommonOptions {
  /** Sign (or seal) with the first, accept all: rotation without logging anyone out. Each at least 32 bytes. */
  secrets: readonly Secret[];
  /** Sliding inactivity timeout. Default 30 minutes. */
  idleTimeoutMs?: number;
  /** Lifetime from creation (login), whatever the activity. Default 12 hours. */
  absoluteTimeoutMs?: number;
  /** Refresh the last-seen time at most this often. Default: a tenth of the idle timeout, at most 60 s. */
  touchIntervalMs?: number;
  cookie?: CookieOptions;
  /** Believe `X-Forwarded-Proto: https` (only behind a TLS-terminating proxy you control). Default false. */
  trustProxy?: boolean;
}

export interface SessionsOptions extends CommonOptions {
  /** Any `@kvsession/kv` store. Records go under `sess:`, the per-user index under `sess-user:`. */
  store: KvStore;
  /**
   * Serialised mode: requests carrying the same session run load → handler → commit one at a time,
   * across processes, so a read-modify-write of one key never loses an update. `true` or lease
   * timings turn it on for every request; `open({ serialize })` turns it on or off per request.
   * Needs a store with compare-and-set. Default off.
   */
  serialize?: boolean | SerializeOptions;
  /** Key prefix of this session layer inside `store`. Default "sess". */
  namespace?: string;
  /**
   * Most live sessions one user may have. A login beyond it ends that user's least recently
   * used sessions (never the one logging in), so credentials in the wrong hands cannot pile up
   * sessions faster than the owner can revoke them. Default 100.
   */
  maxSessionsPerUser?: number;
  /** Compare-and-set attempts per commit before a `SessionConflictError`. Default 10. */
  maxRetries?: number;
  /**
   * Switching from express-session or @fastify/session without logging anyone out: a request with a
   * valid old cookie (and no session of ours) is upgraded once to a session of ours with the old data.
   * See `LegacyOptions`; remove the option after its `until` date.
   */
  legacy?: LegacyOptions;
  /** Told about a stored record that cannot be decoded (it is then ignored and a fresh session started). */
  onCorruptRecord?: (error: unknown) => void;
}

export interface Sessions<D extends object = SessionData> {
  /** Starts a request's session. No I/O until the session is read or written. */
  open(input?: OpenInput): Session<D>;
  /** Every live session of the user, most recently used first (no cap); stale index entries are pruned on the way. */
  listUserSessions(userId: string, options?: { current?: Session<D> }): Promise<UserSessionInfo[]>;
  /**
   * Ends every session of the user whose login began before this call, except the one given, however
   * many there are; a login racing it fails with a `SessionConflictError` rather than survive.
   * Returns how many records were deleted.
   */
  revokeUser(userId: string, options?: { except?: Session<D> | string }): Promise<number>;
  /** Ends one session of the user by its handle; false when the user has no such session. */
  revokeSession(userId: string, handle: string): Promise<boolean>;
  /** Ends every session of every user (administrators, ASVS 7.4.5). */
  revokeAll(): Promise<void>;
  /** The store view that holds the records (for inspection and tests). */
  readonly records: KvStore;
  /**
   * Whether requests run in serialised mode unless `open({ serialize })` says otherwise (the
   * `serialize` option): an adapter that must end a hold the app's code abandoned watches only these.
   */
  readonly serialized: boolean;
}
