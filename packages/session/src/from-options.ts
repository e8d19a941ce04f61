import { SessionConfigError } from "./errors.js";
import { resolveLeaseTimes, type SerializeOptions } from "./lease.js";
import { createSealedSessions, type SealedSessions, type SealedSessionsOptions } from "./sealed.js";
import { createSessions } from "./sessions.js";
import type { SessionData, Sessions, SessionsOptions } from "./types.js";

/**
 * Adapter options: exactly one of a store (server-side sessions: the cookie holds a signed ID),
 * `sealed: true` (the data travels encrypted in the cookie), or a core you built yourself (to share
 * it with other code, e.g. an admin "revoke" job).
 */
export type SessionsFromOptions<D extends object = SessionData> =
  | (SessionsOptions & { sealed?: false })
  | (SealedSessionsOptions & { sealed: true })
  | { sessions: Sessions<D> | SealedSessions<D> };

const STORE_KEYS = [
  "store",
  "namespace",
  "maxRetries",
  "maxSessionsPerUser",
  "serialize",
  "legacy",
  "onCorruptRecord",
  "secrets",
  "idleTimeoutMs",
  "absoluteTimeoutMs",
  "touchIntervalMs",
  "cookie",
  "trustProxy",
  "sealed",
];
const SEALED_KEYS = [
  "sealed",
  "secrets",
  "idleTimeoutMs",
  "absoluteTimeoutMs",
  "touchIntervalMs",
  "cookie",
  "trustProxy",
  "chunking",
  "maxChunks",
  "compressAboveBytes",
  "revocationStore",
];
/** What users of express-session and @fastify/session try first, and what to write instead. */
const HINTS: Record<string, string> = {
  secret: "use `secrets: [secret]` (an array: the first signs, all verify, for rotation)",
  cookieName: "use `cookie: { name }`",
  cookiePrefix:
    "the __Host-/__Secure- prefix is added automatically on HTTPS (`cookie.prefix: false` turns it off)",
  saveUninitialized: "a session is only stored once something is set; there is nothing to configure",
  rolling: "the last-seen time slides automatically (throttled by `touchIntervalMs`)",
  idGenerator: "IDs are always 256 random bits from the CSPRNG",
};

const COOKIE_KEYS = ["name", "path", "domain", "sameSite", "secure", "persistent", "prefix"];
/** Cookie options of express-session and @fastify/session, and what to write instead. */
const COOKIE_HINTS: Record<string, string> = {
  maxAge:
    "the session lifetime is `idleTimeoutMs`/`absoluteTimeoutMs`; `cookie.persistent: true` gives the cookie a Max-Age of what is left of `absoluteTimeoutMs`, and `session.setCookieMaxAge(ms)` gives one session its own (remember me)",
  expires:
    "a fixed date would end every session at once: use `absoluteTimeoutMs` with `cookie.persistent: true`, or `session.setCookieMaxAge(ms)` per session",
  httpOnly: "the session cookie is always HttpOnly: page scripts must never read the session ID",
  partitioned: "not supported: the session cookie is first-party",
  priority: "not supported; remove the option",
  signed: "the cookie is always signed (HMAC-SHA-256); remove the option",
  encode: "the cookie value is always base64url; remove the option",
};

/**
 * The rule for `cookie`, as for the top level: a key the core does not know is refused with a hint,
 * unless it restates what always happens (`httpOnly: true`); and a production app may not send the
 * session ID over plain HTTP (`secure: "auto"`, the default, already leaves Secure off on local HTTP).
 */
function checkCookie(cookie: unknown): void {
  if (cookie === undefined) return;
  if (cookie === null || typeof cookie !== "object" || Array.isArray(cookie))
    throw new SessionConfigError('options.cookie must be an object, e.g. cookie: { name: "sid" }');
  const c = cookie as Record<string, unknown>;
  for (const k of Object.keys(c)) {
    if (COOKIE_KEYS.includes(k) || c[k] === undefined) continue;
    if (k === "httpOnly" && c[k] === true) continue;
    const hint = COOKIE_HINTS[k] ?? `the cookie options are ${COOKIE_KEYS.join(", ")}`;
    throw new SessionConfigError(`unknown option "cookie.${k}": ${hint}`);
  }
  if (c.secure === false && process.env.NODE_ENV === "production")
    throw new SessionConfigError(
      'cookie.secure: false with NODE_ENV=production would send the session ID over plain HTTP: remove it ("auto", the default, sets Secure on HTTPS requests; behind a TLS proxy set trustProxy)',
    );
}

/**
 * Checks a per-route serialised-mode setting (`true`/`false`, or lease timings `{ leaseMs, waitMs,
 * maxHoldMs }`) when the route is defined, so a mistake fails at start-up, not on the first request
 * of a session. Returns it as `OpenInput.serialize` takes it.
 *
 * @example
 * const serialize = checkSerializeOption({ waitMs: 2_000 }, "session.serialize()");
 * sessions.open({ cookieHeader, secure, serialize });
 */
export function checkSerializeOption(value: unknown, where: string): boolean | SerializeOptions {
  if (typeof value === "boolean") return value;
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new SessionConfigError(
      `${where} takes true, false or lease timings { leaseMs, waitMs, maxHoldMs } (ms), got ${String(value)}`,
    );
  for (const k of Object.keys(value))
    if (!["leaseMs", "waitMs", "maxHoldMs"].includes(k))
      throw new SessionConfigError(
        `${where}: unknown lease timing "${k}"; the timings are leaseMs, waitMs, maxHoldMs`,
      );
  try {
    resolveLeaseTimes(value as SerializeOptions);
  } catch (err) {
    throw new SessionConfigError(`${where}: ${(err as Error).message}`);
  }
  return value as SerializeOptions;
}

/**
 * Validates adapter options and builds the core, so a mistake fails at start-up
 * with a message that says what to write instead of surfacing on the first
 * request. Every framework adapter calls this: one set of rules and hints.
 *
 * @example
 * const sessions = createSessionsFrom(options, "@kvsession/session-fastify");
 */
export function createSessionsFrom<D extends object = SessionData>(
  options: SessionsFromOptions<D> | undefined,
  caller = "session middleware",
): Sessions<D> | SealedSessions<D> {
  if (options === null || typeof options !== "object")
    throw new SessionConfigError(
      `${caller} needs options: { store, secrets }, { sealed: true, secrets } or { sessions }`,
    );
  const o = options as unknown as Record<string, unknown>;
  if ("sessions" in o) {
    const s = o.sessions as { open?: unknown } | undefined;
    if (typeof s?.open !== "function")
      throw new SessionConfigError(
        "options.sessions must come from createSessions() or createSealedSessions()",
      );
    const extra = Object.keys(o).filter((k) => k !== "sessions");
    if (extra.length > 0)
      throw new SessionConfigError(
        `options.sessions is already configured; move ${extra.join(", ")} into createSessions()`,
      );
    return o.sessions as Sessions<D> | SealedSessions<D>;
  }
  const sealed = o.sealed === true;
  if (o.sealed !== undefined && typeof o.sealed !== "boolean")
    throw new SessionConfigError("options.sealed must be true or false");
  if (sealed && o.store !== undefined)
    throw new SessionConfigError(
      "options.store and sealed: true exclude each other: pass a store for server-side sessions, or sealed: true for sealed cookies (and `revocationStore` for revocation)",
    );
  if (!sealed && o.store === undefined)
    throw new SessionConfigError(
      "options.store is missing: pass any @kvsession/kv store (e.g. createMemoryStore() or createSqliteStore({ path })), or sealed: true to keep sessions in an encrypted cookie",
    );
  const allowed = sealed ? SEALED_KEYS : STORE_KEYS;
  for (const k of Object.keys(o)) {
    if (allowed.includes(k) || o[k] === undefined) continue;
    throw new SessionConfigError(`unknown option "${k}"${HINTS[k] ? `: ${HINTS[k]}` : ""}`);
  }
  checkCookie(o.cookie);
  if (o.secrets === undefined)
    throw new SessionConfigError(
      "options.secrets is missing: pass at least one secret of 32+ bytes, e.g. secrets: [process.env.SESSION_SECRET] (generate one with `openssl rand -base64 48`)",
    );
  return sealed
    ? createSealedSessions<D>(o as unknown as SealedSessionsOptions)
    : createSessions<D>(o as unknown as SessionsOptions);
}
