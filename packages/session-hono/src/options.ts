import type {
  SealedSessions,
  SerializeOptions,
  SessionData,
  Sessions,
  SessionsFromOptions,
} from "@kvsession/session";

/**
 * Exactly one of: a store (server-side sessions), `sealed: true` (encrypted cookie), or a core you
 * built. With a store, `serialize` is the core's option (`true` or lease timings) for every request
 * through this middleware; with a core you built, `serialize: true` serialises the requests through
 * this middleware with the core's lease timings, and lease timings `{ leaseMs, waitMs, maxHoldMs }`
 * with these (checked when the middleware is made).
 *
 * @example
 * app.use("/cart/*", session({ sessions, serialize: { waitMs: 2_000 } }));
 */
export type HonoSessionOptions<D extends object = SessionData> =
  | Exclude<SessionsFromOptions<D>, { sessions: unknown }>
  | { sessions: Sessions<D> | SealedSessions<D>; serialize?: boolean | SerializeOptions };
