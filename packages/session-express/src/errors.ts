import { retryableResponse } from "@kvsession/session";

type HttpError = Error & {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  headers?: Record<string, string>;
};

/**
 * Session errors a retry can fix (the store is down, the session kept changing, serialised mode
 * timed out) become what `retryableResponse` says: status 503 and a `Retry-After` in `err.headers`,
 * which Express's final handler sends, and its generic message. The error's own text can name the
 * store (host and port, a file path), and Express's final handler sends `err.stack` to the client
 * whenever NODE_ENV is not "production": the stack keeps only the generic line. What failed stays on
 * `err.cause` for logs. Other errors pass unchanged (a 500 through Express's usual path).
 */
export function withStatus(err: unknown): unknown {
  const r = retryableResponse(err);
  if (r === undefined) return err;
  const e = err as HttpError;
  if (e.message !== r.message) {
    e.message = r.message;
    e.stack = `${e.name}: ${r.message}`;
  }
  e.status ??= r.status;
  e.statusCode ??= r.status;
  e.expose ??= false;
  e.headers = { ...e.headers, ...r.headers };
  return err;
}
