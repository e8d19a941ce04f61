import type {
  SealedSessions,
  SealedSessionsOptions,
  SerializeOptions,
  Sessions,
  SessionsOptions,
} from "@kvsession/session";
import type { IsLazy, IsSealed, SessionShape } from "./types.js";

/** Server-side sessions: the cookie holds a signed ID, `store` holds the data. */
export type StoreModeOptions = SessionsOptions & { sealed?: false };
/** Sealed-cookie sessions: the data travels encrypted in the cookie, no store needed. */
export type SealedModeOptions = SealedSessionsOptions & { sealed: true };
/**
 * A core you built yourself (to share it with other code, e.g. an admin "revoke" job).
 * `serialize: true` here serialises every request of this plugin with the core's lease timings
 * (`createSessions({ serialize })`); lease timings `{ leaseMs, waitMs, maxHoldMs }` with these.
 */
export type PrebuiltOptions<S = Sessions<SessionShape> | SealedSessions<SessionShape>> = {
  sessions: S;
  serialize?: boolean | SerializeOptions;
};

/**
 * `lazy: true`: `request.session` is the promise-based API, opened on first use (a route that never
 * touches it costs no store I/O even with a cookie). Declare `KvSessionTypes { lazy: true }` to use it.
 */
export type LazyOption = IsLazy extends true ? { lazy: true } : { lazy?: false };

/**
 * The plugin's options: exactly one of `store`, `sealed: true` or `sessions` (validated by the core
 * when the plugin is registered), matching the mode declared in `KvSessionTypes`.
 */
export type KvSessionOptions = LazyOption &
  (IsSealed extends true
    ? SealedModeOptions | PrebuiltOptions<SealedSessions<SessionShape>>
    : StoreModeOptions | PrebuiltOptions<Sessions<SessionShape>>);
