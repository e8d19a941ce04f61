import {
  KvConnectionError,
  KvDriverError,
  KvError,
  KvPermissionError,
  KvStorageFullError,
} from "@kvsession/kv";

/** Maps a Node fs error onto the typed KvError family, naming the file and what to do. */
export function toKvError(error: unknown, operation: string, dir: string): KvError {
  if (error instanceof KvError) return error;
  const e = error as { code?: unknown; message?: unknown; path?: unknown } | undefined;
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : String(error);
  const where = `kv-fs ${operation} in ${dir} failed`;
  const cause = { cause: error };
  switch (code) {
    case "ENOSPC":
    case "EDQUOT":
      return new KvStorageFullError(
        `${where}: the disk or quota is full (${message}); free space, then retry — the previous value of the key is intact`,
        cause,
      );
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new KvPermissionError(
        `${where}: permission denied (${message}); give this process read and write access to ${dir} and everything under it, or mount it read-write`,
        cause,
      );
    case "ENOTDIR":
      return new KvPermissionError(
        `${where}: a path component is not a directory (${message}); something else replaced part of ${dir} — move it away`,
        cause,
      );
    case "ENOENT":
      return new KvConnectionError(
        `${where}: the store directory is gone (${message}); recreate ${dir} (or remount it) and retry`,
        cause,
      );
  }
  return new KvDriverError(`${where}: ${message}${code ? ` (${code})` : ""}`, cause);
}
