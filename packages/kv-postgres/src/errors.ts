import {
  KvConnectionError,
  KvCorruptError,
  KvDriverError,
  KvError,
  KvPermissionError,
  KvStorageFullError,
  KvTimeoutError,
} from "@kvsession/kv";

/** Node socket errors that mean "the server is not there (any more)". */
const NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * Maps what `pg` throws onto the typed KvError family. `pg` reports server
 * errors with a SQLSTATE `code` and client-side failures (socket closed, pool
 * connect timeout) only by message, so both are inspected.
 */
export function toKvError(error: unknown, operation: string): KvError {
  if (error instanceof KvError) return error;
  const e = error as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : String(error);
  const where = `PostgreSQL ${operation} failed`;
  const cause = { cause: error };

  if (/Query read timeout/i.test(message))
    return new KvTimeoutError(
      `${where}: no answer within the pool's query_timeout; the server is hung, overloaded or unreachable — retry later, or raise query_timeout`,
      cause,
    );
  if (code === "57014")
    return new KvTimeoutError(
      `${where}: the statement timed out (${message}); the server is overloaded or a row is locked by a long transaction — retry, or raise statement_timeout`,
      cause,
    );
  if (/timeout exceeded when trying to connect|connection timeout/i.test(message))
    return new KvTimeoutError(
      `${where}: no connection within the pool's connectionTimeoutMillis (${message}); the server is down or the pool is exhausted — check the server and pool size, then retry`,
      cause,
    );
  if (
    code.startsWith("08") ||
    code === "57P01" ||
    code === "57P02" ||
    code === "57P03" ||
    NET_CODES.has(code) ||
    /Connection terminated|Client has encountered a connection error|connection.*(closed|ended)|not queryable/i.test(
      message,
    )
  )
    return new KvConnectionError(
      `${where}: the server cannot be reached (${message}); retry once PostgreSQL is back — the pool reconnects by itself`,
      cause,
    );
  if (code === "53100")
    return new KvStorageFullError(
      `${where}: the database disk is full (${message}); free space on the server`,
      cause,
    );
  if (code === "42501" || code.startsWith("28"))
    return new KvPermissionError(
      `${where}: permission denied (${message}); grant the role access to the store's table, sequence and schema`,
      cause,
    );
  if (code === "XX001" || code === "XX002")
    return new KvCorruptError(
      `${where}: the server reports corrupt data (${message}); restore from backup`,
      cause,
    );
  return new KvDriverError(`${where}: ${message}${code ? ` (SQLSTATE ${code})` : ""}`, cause);
}
