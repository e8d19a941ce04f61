import { SessionError } from "@kvsession/session";

/** The message a store failure carries once it reaches Fastify: clients may see it. */
export const STORE_UNAVAILABLE = "Session store unavailable";

/**
 * A store failure's own text names the store (its host and port, a file path), and Fastify's
 * error handler sends `message` to the client: the message becomes generic, the stack's first
 * line with it. The failure itself stays on `err.cause`, which Fastify's logger prints.
 */
function hideStoreDetail(err: SessionError): void {
  const before = `${err.name}: ${err.message}`;
  const stack = err.stack ?? "";
  const frames = stack.startsWith(before) ? stack.slice(before.length) : "";
  err.message = STORE_UNAVAILABLE;
  err.stack = `${err.name}: ${STORE_UNAVAILABLE}${frames}`;
}

/**
 * Gives session errors the `statusCode` Fastify's error handler reads: the store
 * being down (or a record that kept changing) is the server's temporary trouble,
 * so 503 tells clients and load balancers to retry; everything else is a 500.
 * A store failure's message becomes "Session store unavailable" (the failure is its `cause`).
 */
export function withStatus(err: unknown): unknown {
  if (err instanceof SessionError && !("statusCode" in err)) {
    const status = err.code === "SESSION_STORE" || err.code === "SESSION_CONFLICT" ? 503 : 500;
    Object.defineProperty(err, "statusCode", { value: status, enumerable: false });
    if (err.code === "SESSION_STORE") hideStoreDetail(err);
  }
  return err;
}
