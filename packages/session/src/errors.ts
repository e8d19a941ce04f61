/**
 * Stable codes of every error the session layer throws, so adapters can branch
 * on `err.code` (a 503 for `SESSION_STORE`, a 500 for the rest).
 */
export type SessionErrorCode =
  | "SESSION_CONFIG"
  | "SESSION_STORE"
  | "SESSION_CONFLICT"
  | "SESSION_BUSY"
  | "SESSION_DATA"
  | "SESSION_COOKIE_TOO_LARGE"
  | "SESSION_STATE";

/**
 * The one error family of `@kvsession/session`.
 *
 * @example
 * try { await session.commit() } catch (err) {
 *   if (err instanceof SessionError && err.code === "SESSION_STORE") return reply(503);
 *   throw err;
 * }
 */
export class SessionError extends Error {
  readonly code: SessionErrorCode;
  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad option at creation time (a short secret, an idle timeout above the absolute one…). */
export class SessionConfigError extends SessionError {
  constructor(message: string) {
    super("SESSION_CONFIG", message);
  }
}

/**
 * The store failed (connection lost, timeout, corrupt engine). The `cause` is the
 * `KvError`. The session was NOT replaced by an empty one: answer 503 and let the
 * client retry once the store is back.
 *
 * The message names only the operation, never the cause's text (which can hold the
 * store's host, port or query): a framework that shows `message` to clients leaks
 * nothing. Log `cause` for the details.
 */
export class SessionStoreError extends SessionError {
  readonly operation: string;
  constructor(operation: string, cause: unknown) {
    super("SESSION_STORE", `session store unavailable (${operation}); see the error's cause`, { cause });
    this.operation = operation;
  }
}

/** The record kept changing under us longer than the retry budget allows. */
export class SessionConflictError extends SessionError {
  constructor(attempts: number, message?: string) {
    super(
      "SESSION_CONFLICT",
      message ??
        `session record changed concurrently ${attempts} times in a row; the change was not saved — retry the request`,
    );
  }
}

/**
 * Serialised mode: another request held this session for longer than `serialize.waitMs`.
 * Answer 503 with `Retry-After: retryAfterSeconds`; nothing was read or written.
 */
export class SessionBusyError extends SessionError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super(
      "SESSION_BUSY",
      "another request holds this session (serialised mode) and did not finish in time; retry the request",
    );
    this.retryAfterSeconds = Math.max(1, retryAfterSeconds);
  }
}

/**
 * A value that cannot be stored (not JSON, a `__proto__` key, a record over the store's
 * `maxValueBytes`…); `cause` is the codec or `KvValueTooLargeError`. Retrying cannot help: not a 503.
 */
export class SessionDataError extends SessionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SESSION_DATA", message, options);
  }
}

/** A sealed session does not fit in the cookies allowed; raised before any header is produced. */
export class SessionCookieTooLargeError extends SessionError {
  constructor(bytes: number, limit: number, hint: string) {
    super(
      "SESSION_COOKIE_TOO_LARGE",
      `sealed session needs ${bytes} bytes of cookies, the limit is ${limit}; ${hint}`,
    );
  }
}

/** A method called at the wrong moment (a change after commit, a session used after destroy…). */
export class SessionStateError extends SessionError {
  constructor(message: string) {
    super("SESSION_STATE", message);
  }
}

/**
 * How an adapter answers a session error: 503 (with `Retry-After`) for what a retry can fix — the
 * store is down, the session kept changing, or another request holds it — and undefined for the
 * rest, which are the app's bugs (500 through the framework's usual path).
 *
 * @example
 * const r = retryableResponse(err);
 * if (r) { res.writeHead(r.status, r.headers); return res.end(r.message); }
 */
export function retryableResponse(
  err: unknown,
): { status: 503; headers: { "retry-after": string }; message: string } | undefined {
  if (!(err instanceof SessionError)) return undefined;
  if (err instanceof SessionBusyError)
    return {
      status: 503,
      headers: { "retry-after": String(err.retryAfterSeconds) },
      message: "Session busy",
    };
  if (err.code === "SESSION_STORE" || err.code === "SESSION_CONFLICT")
    return { status: 503, headers: { "retry-after": "1" }, message: "Session store unavailable" };
  return undefined;
}
