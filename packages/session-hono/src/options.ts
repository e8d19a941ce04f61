import type { SessionData, SessionsFromOptions } from "@kvsession/session";

/** Exactly one of: a store (server-side sessions), `sealed: true` (encrypted cookie), or a core you built. */
export type HonoSessionOptions<D extends object = SessionData> = SessionsFromOptions<D>;
