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

/** Exactly one of: a store (server-side sessions), `sealed: true` (encrypted cookie), or a core you built. */
export type HonoSessionOptions<D extends object = SessionData> =
  | (SessionsOptions & { sealed?: false })
  | (SealedSessionsOptions & { sealed: true })
  | { sessions: Sessions<D> | SealedSessions<D> };

/** Builds the core once, when the middleware is created, so a bad option fails at start-up. */
export function buildSessions<D extends object>(
  options: HonoSessionOptions<D> | undefined,
): Sessions<D> | SealedSessions<D> {
  if (options === null || typeof options !== "object")
    throw new SessionConfigError(
      "session() needs options: { store, secrets }, { sealed: true, secrets } or { sessions }",
    );
  const o = options as unknown as Record<string, unknown>;
  if (o.sessions !== undefined) {
    if (typeof (o.sessions as { open?: unknown }).open !== "function")
      throw new SessionConfigError(
        "options.sessions must come from createSessions() or createSealedSessions()",
      );
    return o.sessions as Sessions<D>;
  }
  if (o.sealed === true) {
    if (o.store !== undefined)
      throw new SessionConfigError(
        "options.store and sealed: true exclude each other (sealed sessions take a `revocationStore`)",
      );
    return createSealedSessions<D>(o as unknown as SealedSessionsOptions);
  }
  if (o.store === undefined)
    throw new SessionConfigError(
      "options.store is missing: pass any @kvsession/kv store, or sealed: true to keep sessions in an encrypted cookie",
    );
  if (o.secrets === undefined)
    throw new SessionConfigError(
      "options.secrets is missing: pass at least one secret of 32+ bytes (`openssl rand -base64 48`)",
    );
  return createSessions<D>(o as unknown as SessionsOptions);
}
