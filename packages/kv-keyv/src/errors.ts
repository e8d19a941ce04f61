import { KvConnectionError, KvDriverError, KvError, KvTimeoutError } from "@kvsession/kv";

/** Keyv adapters throw whatever their client throws; sort the common shapes into the typed family. */
export function toKvError(error: unknown, operation: string, adapter: string): KvError {
  if (error instanceof KvError) return error;
  const e = error as { code?: unknown; message?: unknown; name?: unknown } | undefined;
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : String(error);
  const where = `Keyv adapter ${adapter}: ${operation} failed`;
  if (/timeout|timed out/i.test(message) || code === "ETIMEDOUT")
    return new KvTimeoutError(`${where}: ${message}; retry, or check the engine's load`, { cause: error });
  if (
    ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"].includes(code) ||
    /not connected|connection|socket|closed|ClientClosed/i.test(`${message} ${String(e?.name ?? "")}`)
  )
    return new KvConnectionError(
      `${where}: the engine cannot be reached (${message}); retry once it is back`,
      {
        cause: error,
      },
    );
  return new KvDriverError(`${where}: ${message}${code ? ` (${code})` : ""}`, { cause: error });
}
