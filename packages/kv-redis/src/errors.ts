import {
  KvConnectionError,
  KvCorruptError,
  KvDriverError,
  KvError,
  KvPermissionError,
  KvStorageFullError,
  KvTimeoutError,
} from "@kvsession/kv";

// node-redis error classes, by name: a user-supplied client may come from another copy of the package.
const CONNECTION = new Set([
  "ClientOfflineError",
  "ClientClosedError",
  "SocketClosedUnexpectedlyError",
  "ConnectionTimeoutError",
  "ReconnectStrategyError",
  "RootNodesUnavailableError",
  "DisconnectsClientError",
  // v6, when it carries no reply (with one, the reply is read instead: see unwrap)
  "MaxCommandRedirectionsError",
]);
const TIMEOUT = new Set([
  "TimeoutError",
  "SocketTimeoutError",
  "SocketTimeoutDuringMaintenanceError",
  "CommandTimeoutDuringMaintenanceError",
]);
/** node-redis v6 wraps the last MOVED/ASK of a command that ran out of redirections (v5 threw the reply itself). */
const REDIRECTIONS = "MaxCommandRedirectionsError";
const errorName = (e: object) => e.constructor?.name ?? (e as Error).name;
/** The server's reply behind a v6 redirections error, else the error itself. */
function unwrap(error: unknown): unknown {
  if (error === null || typeof error !== "object" || errorName(error) !== REDIRECTIONS) return error;
  return (error as { cause?: unknown }).cause ?? error;
}
const NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
]);

/**
 * Maps whatever node-redis or the server threw onto the typed KvError family,
 * keeping the original as `cause`, with a message that says what to do.
 */
export function toKvError(error: unknown, where: string): KvError {
  if (error instanceof KvError) return error;
  // A v6 redirections error is read as the MOVED/ASK reply it wraps (the server's error, as `cause`).
  const inner = unwrap(error);
  const err = inner instanceof Error ? inner : new Error(String(inner));
  const name = errorName(err);
  const code = (err as { code?: string }).code;
  const msg = err.message;
  if (CONNECTION.has(name) || (code !== undefined && NET_CODES.has(code)))
    return new KvConnectionError(
      `Redis at ${where} is unreachable (${msg}); the store reconnects by itself, retry once the server is back`,
      { cause: err },
    );
  if (TIMEOUT.has(name))
    return new KvTimeoutError(
      `Redis at ${where} did not answer in time (${msg}); check the server's load and health`,
      {
        cause: err,
      },
    );
  const reply = /^([A-Z]+)\b/.exec(msg)?.[1];
  switch (reply) {
    case "OOM":
      return new KvStorageFullError(
        `Redis at ${where} is out of memory (${msg}); raise maxmemory, set an eviction policy or store less`,
        { cause: err },
      );
    case "NOPERM":
    case "NOAUTH":
    case "WRONGPASS":
      return new KvPermissionError(
        `Redis at ${where} refused the command (${msg}); check the user, password and ACL rules for this namespace`,
        { cause: err },
      );
    case "LOADING":
    case "CLUSTERDOWN":
    case "TRYAGAIN":
    case "MASTERDOWN":
    case "READONLY":
    case "NOREPLICAS":
      return new KvConnectionError(
        `Redis at ${where} cannot serve writes or reads right now (${msg}); retry shortly`,
        { cause: err },
      );
    case "MOVED":
    case "ASK":
      return new KvConnectionError(
        `Redis at ${where} moved this key's slot to another node (${msg}); the store re-reads the slot map, retry shortly`,
        { cause: err },
      );
    case "UNBLOCKED":
      return new KvConnectionError(
        `Redis at ${where} changed role while the command waited (${msg}); retry once the cluster has settled`,
        { cause: err },
      );
    case "BUSY":
      return new KvTimeoutError(`Redis at ${where} is busy running a script (${msg}); retry shortly`, {
        cause: err,
      });
    case "WRONGTYPE":
      return new KvCorruptError(
        `a key in this store's namespace holds a non-string Redis value (${msg}); give the store a namespace no other application writes to`,
        { cause: err },
      );
  }
  return new KvDriverError(`Redis at ${where} failed: ${msg}`, { cause: err });
}

/** Replies with which a server refuses a command before running any of it: sending it again is safe. */
const REFUSED = new Set(["CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "MOVED", "ASK"]);

/**
 * The reply code when the server refused the command without running it (the cluster is failing
 * over, a node is loading its data, the slot lives elsewhere), so it may be sent again; else undefined.
 * Inside MULTI such a refusal makes EXEC discard the whole transaction, so the same holds for it.
 */
export function refusal(error: unknown): string | undefined {
  error = unwrap(error);
  if (error === null || typeof error !== "object") return undefined;
  const msg = (error as { message?: unknown }).message;
  if (typeof msg !== "string") return undefined;
  const code = /^([A-Z]+)\b/.exec(msg)?.[1];
  return code !== undefined && REFUSED.has(code) ? code : undefined;
}
