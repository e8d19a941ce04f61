import { retryableResponse, SessionError } from "@kvsession/session";

/**
 * The message becomes generic, the stack's first line with it: a store failure's own text names
 * the store (its host and port, a file path), and Fastify's error handler sends `message` to the
 * client. The failure itself stays on `err.cause`, which Fastify's logger prints.
 */
function replaceMessage(err: SessionError, message: string): void {
  const before = `${err.name}: ${err.message}`;
  const stack = err.stack ?? "";
  const frames = stack.startsWith(before) ? stack.slice(before.length) : "";
  err.message = message;
  err.stack = `${err.name}: ${message}${frames}`;
}

/**
 * Gives a session error what Fastify's error handler reads: what a retry can fix (the store is
 * down, the session kept changing, another request holds it in serialised mode) becomes a 503 with
 * `Retry-After` (`statusCode`, `headers`) and a generic message, as `retryableResponse` says;
 * every other session error is a 500. The error keeps its class and `code`.
 *
 * @example
 * app.setErrorHandler((err, request, reply) => {
 *   withStatus(err); // before reading statusCode in your own handler
 *   reply.code((err as { statusCode?: number }).statusCode ?? 500).send({ error: "try again" });
 * });
 */
export function withStatus(err: unknown): unknown {
  if (err instanceof SessionError && !("statusCode" in err)) {
    const retry = retryableResponse(err);
    Object.defineProperty(err, "statusCode", { value: retry?.status ?? 500, enumerable: false });
    if (retry) {
      Object.defineProperty(err, "headers", { value: { ...retry.headers }, enumerable: false });
      replaceMessage(err, retry.message);
    }
  }
  return err;
}
