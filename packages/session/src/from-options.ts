import { SessionConfigError } from "./errors.js";
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
  if (o.secrets === undefined)
    throw new SessionConfigError(
      "options.secrets is missing: pass at least one secret of 32+ bytes, e.g. secrets: [process.env.SESSION_SECRET] (generate one with `openssl rand -base64 48`)",
    );
  return sealed
    ? createSealedSessions<D>(o as unknown as SealedSessionsOptions)
    : createSessions<D>(o as unknown as SessionsOptions);
}
