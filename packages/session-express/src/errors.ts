import { SessionError } from "@kvsession/session";

/** The message a store failure carries once it reaches Express: clients may see it. */
export const STORE_UNAVAILABLE = "Session store unavailable";

/**
 * A store failure's own text names the store (its host and port, a file path), and Express's
 * final handler sends `err.stack` to the client whenever NODE_ENV is not "production": the
 * message becomes generic and the stack keeps only that line. The failure itself, with its own
 * message and stack, stays on `err.cause` for logs.
 */
function hideStoreDetail(err: SessionError): void {
  err.message = STORE_UNAVAILABLE;
  err.stack = `${err.name}: ${STORE_UNAVAILABLE}`;
}

/** Store outages and exhausted retries are the client's cue to retry: 503, not 500. */
export function withStatus(err: unknown): unknown {
  if (err instanceof SessionError && (err.code === "SESSION_STORE" || err.code === "SESSION_CONFLICT")) {
    const e = err as SessionError & { status?: number; statusCode?: number; expose?: boolean };
    if (e.code === "SESSION_STORE" && e.message !== STORE_UNAVAILABLE) hideStoreDetail(e);
    e.status ??= 503;
    e.statusCode ??= 503;
    e.expose ??= false;
  }
  return err;
}
