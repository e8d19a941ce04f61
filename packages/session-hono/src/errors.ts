import { SessionError } from "@kvsession/session";

/**
 * Hono's default error handler answers with `err.getResponse()` when an error has
 * one (that is how HTTPException works). Giving session errors one turns a store
 * outage into a 503 the client may retry, while the error keeps its class and
 * `code` for an app's own `onError`.
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
  }
  return err;
}
