import { SessionError } from "@kvsession/session";

/** The message a store failure carries once it reaches Hono: an app's `onError` may show it. */
export const STORE_UNAVAILABLE = "Session store unavailable";

/**
 * A store failure's own text names the store (its host and port, a file path): the message
 * becomes generic, the stack's first line with it. The failure itself stays on `err.cause`.
 */
function hideStoreDetail(err: SessionError): void {
  const before = `${err.name}: ${err.message}`;
  const stack = err.stack ?? "";
  const frames = stack.startsWith(before) ? stack.slice(before.length) : "";
  err.message = STORE_UNAVAILABLE;
  err.stack = `${err.name}: ${STORE_UNAVAILABLE}${frames}`;
}

/**
 * Hono's default error handler answers with `err.getResponse()` when an error has
 * one (that is how HTTPException works). Giving session errors one turns a store
 * outage into a 503 the client may retry, while the error keeps its class and
 * `code` for an app's own `onError`; a store failure's message becomes
 * "Session store unavailable" (the failure is its `cause`).
 */
export function withResponse(err: unknown): unknown {
  if (err instanceof SessionError && !("getResponse" in err)) {
    const status = err.code === "SESSION_STORE" || err.code === "SESSION_CONFLICT" ? 503 : 500;
    const text = status === 503 ? "Service Unavailable" : "Internal Server Error";
    Object.defineProperty(err, "getResponse", {
      value: () =>
        new Response(text, {
          status,
          headers: { "content-type": "text/plain; charset=UTF-8", "cache-control": "no-store" },
        }),
      enumerable: false,
    });
    if (err.code === "SESSION_STORE") hideStoreDetail(err);
  }
  return err;
}
