import { SessionError } from "@kvsession/session";

/**
 * Gives session errors the `statusCode` Fastify's error handler reads: the store
 * being down (or a record that kept changing) is the server's temporary trouble,
 * so 503 tells clients and load balancers to retry; everything else is a 500.
 */
export function withStatus(err: unknown): unknown {
  if (err instanceof SessionError && !("statusCode" in err)) {
    const status = err.code === "SESSION_STORE" || err.code === "SESSION_CONFLICT" ? 503 : 500;
    Object.defineProperty(err, "statusCode", { value: status, enumerable: false });
  }
  return err;
}
