import type {
  SealedSessionsOptions,
  SessionData,
  SessionsFromOptions,
  SessionsOptions,
} from "@kvsession/session";

/** Server-side sessions: the cookie holds a signed ID, `store` holds the data. */
export type StoreModeOptions = SessionsOptions & { sealed?: false };
/** Sealed-cookie sessions: the data travels encrypted in the cookie, no store needed. */
export type SealedModeOptions = SealedSessionsOptions & { sealed: true };
/** A core instance you built yourself (to share it with other code, e.g. an admin "revoke" job). */
export type PrebuiltOptions = Extract<SessionsFromOptions<SessionData>, { sessions: unknown }>;

/** The options of the plugin: exactly one of `store`, `sealed: true` or `sessions` (validated by the core). */
export type KvSessionOptions = SessionsFromOptions;
