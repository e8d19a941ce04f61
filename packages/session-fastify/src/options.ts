import {
  createSealedSessions,
  createSessions,
  type SealedSessions,
  type SealedSessionsOptions,
  SessionConfigError,
  type SessionData,
  type Sessions,
  type SessionsOptions,
} from "@kvsession/session";

/** Server-side sessions: the cookie holds a signed ID, `store` holds the data. */
export type StoreModeOptions = SessionsOptions & { sealed?: false };
/** Sealed-cookie sessions: the data travels encrypted in the cookie, no store needed. */
export type SealedModeOptions = SealedSessionsOptions & { sealed: true };
/** A core instance you built yourself (to share it with other code, e.g. an admin "revoke" job). */
export interface PrebuiltOptions {
  sessions: Sessions<SessionData> | SealedSessions<SessionData>;
}

/** The options of the plugin: exactly one of `store`, `sealed: true` or `sessions`. */
export type KvSessionOptions = StoreModeOptions | SealedModeOptions | PrebuiltOptions;

const STORE_KEYS = [
  "store",
  "namespace",
  "maxRetries",
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
/** What @fastify/session users will try first, and what to write instead. */
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
 * Checks the options at registration and builds the core, so a mistake fails
 * `fastify.ready()` with a message that says what to write, instead of surfacing
 * on the first request.
 */
export function buildSessions(
  options: KvSessionOptions | undefined,
): Sessions<SessionData> | SealedSessions<SessionData> {
  if (options === null || typeof options !== "object")
    throw new SessionConfigError(
      "@kvsession/session-fastify needs options: { store, secrets } or { sealed: true, secrets }",
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
    return o.sessions as PrebuiltOptions["sessions"];
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
    ? createSealedSessions(o as unknown as SealedSessionsOptions)
    : createSessions(o as unknown as SessionsOptions);
}
