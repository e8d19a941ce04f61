import { retryableResponse, SessionError } from "@kvsession/session";

/**
 * The response for a session error a retry can fix (the store is down, the session kept changing,
 * another request holds it in serialised mode): 503 with `Retry-After` and a generic text body, as
 * `retryableResponse` says; undefined for every other error.
 *
 * @example
 * app.onError((err, c) => retryResponse(err) ?? c.text("Internal Server Error", 500));
 */
export function retryResponse(err: unknown): Response | undefined {
  const retry = retryableResponse(err);
  if (retry === undefined) return undefined;
  return new Response(retry.message, {
    status: retry.status,
    headers: {
      ...retry.headers,
      "content-type": "text/plain; charset=UTF-8",
      "cache-control": "no-store",
    },
  });
}

/**
 * Hono's default error handler answers with `err.getResponse()` when an error has one (that is how
 * HTTPException works). Giving a session error thrown by the commit one makes it the 503 of
 * `retryResponse` (or a bare 500 for the rest) while the error keeps its class and `code` for an
 * app's own `onError`.
 *
 * @example
 * throw withResponse(err); // Hono's default handler now answers 503 with Retry-After
 */
export function withResponse(err: unknown): unknown {
  if (err instanceof SessionError && !("getResponse" in err)) {
    Object.defineProperty(err, "getResponse", {
      value: () =>
        retryResponse(err) ??
        new Response("Internal Server Error", {
          status: 500,
          headers: { "content-type": "text/plain; charset=UTF-8", "cache-control": "no-store" },
        }),
      enumerable: false,
    });
  }
  return err;
}
