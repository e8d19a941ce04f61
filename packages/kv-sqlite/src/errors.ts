import {
  KvConnectionError,
  KvCorruptError,
  KvDriverError,
  KvError,
  KvPermissionError,
  KvStorageFullError,
  KvTimeoutError,
} from "@kvsession/kv";

/**
 * Maps what better-sqlite3 throws onto the typed KvError family. SqliteError
 * carries the extended result code as a string (`SQLITE_BUSY_SNAPSHOT`…), so
 * the primary code is its first two words.
 */
export function toKvError(error: unknown, operation: string, file: string): KvError {
  if (error instanceof KvError) return error;
  const e = error as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : String(error);
  const primary = code.split("_").slice(0, 2).join("_");
  const where = `SQLite ${operation} on ${file} failed`;
  const cause = { cause: error };

  switch (primary) {
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return new KvTimeoutError(
        `${where}: the database stayed locked by another connection past busyTimeoutMs (${message}); a long transaction elsewhere holds the write lock — retry, or raise busyTimeoutMs`,
        cause,
      );
    case "SQLITE_NOTADB":
    case "SQLITE_CORRUPT":
      return new KvCorruptError(
        `${where}: the file is not a SQLite database or is damaged (${message}); point the store at another file, or restore this one from a backup`,
        cause,
      );
    case "SQLITE_READONLY":
    case "SQLITE_PERM":
    case "SQLITE_AUTH":
      return new KvPermissionError(
        `${where}: the database is read-only for this process (${message}); open it without readonly, or give this process write access to the file, its -wal/-shm files and its directory`,
        cause,
      );
    case "SQLITE_CANTOPEN":
      return new KvPermissionError(
        `${where}: the file cannot be opened (${message}); check that its directory exists and that this process may read and write there`,
        cause,
      );
    case "SQLITE_FULL":
      return new KvStorageFullError(
        `${where}: the disk (or SQLite's max_page_count) is full (${message}); free space, then retry — committed data is intact`,
        cause,
      );
    case "SQLITE_IOERR":
      if (/ENOSPC|disk is full|no space/i.test(message))
        return new KvStorageFullError(
          `${where}: the disk is full (${message}); free space, then retry`,
          cause,
        );
      return new KvDriverError(
        `${where}: an I/O error (${message}${code ? `, ${code}` : ""}); check the disk and the file system the database lives on`,
        cause,
      );
  }
  if (/database connection is not open/i.test(message))
    return new KvConnectionError(
      `${where}: the database connection was closed (${message}); the Database you passed was closed by someone else — create a new store on an open one`,
      cause,
    );
  if (/directory does not exist/i.test(message))
    return new KvPermissionError(
      `${where}: ${message}; create the directory first (the store never creates directories for you)`,
      cause,
    );
  return new KvDriverError(`${where}: ${message}${code ? ` (${code})` : ""}`, cause);
}
