/**
 * Every error this layer throws is a `KvError` with a stable `code`, so callers
 * can branch on `err.code` (or `instanceof` a subclass) instead of parsing text.
 *
 * @example
 * try { await store.get(key) } catch (err) {
 *   if (err instanceof KvError && err.code === "KV_CONNECTION") return retryLater();
 *   throw err;
 * }
 */
export type KvErrorCode =
  | "KV_INVALID_KEY"
  | "KV_INVALID_ARGUMENT"
  | "KV_VALUE_TOO_LARGE"
  | "KV_CONNECTION"
  | "KV_TIMEOUT"
  | "KV_UNSUPPORTED"
  | "KV_CLOSED"
  | "KV_READ_ONLY"
  | "KV_CORRUPT"
  | "KV_STORAGE_FULL"
  | "KV_PERMISSION"
  | "KV_CODEC"
  | "KV_DRIVER";

export class KvError extends Error {
  readonly code: KvErrorCode;
  constructor(code: KvErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The key is empty, too long, not a string, contains NUL or is not well-formed Unicode. */
export class KvKeyError extends KvError {
  constructor(message: string) {
    super("KV_INVALID_KEY", message);
  }
}

/** An option or argument is out of range (a negative TTL, a page size of 0…). */
export class KvArgumentError extends KvError {
  constructor(message: string) {
    super("KV_INVALID_ARGUMENT", message);
  }
}

export class KvValueTooLargeError extends KvError {
  constructor(size: number, limit: number, driver: string) {
    super(
      "KV_VALUE_TOO_LARGE",
      `value of ${size} bytes exceeds the ${driver} limit of ${limit} bytes; store less per key or split the value`,
    );
  }
}

/** The engine cannot be reached. Safe to retry once it is back: stores reconnect by themselves. */
export class KvConnectionError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KV_CONNECTION", message, options);
  }
}

export class KvTimeoutError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KV_TIMEOUT", message, options);
  }
}

/** The driver does not implement this operation; check `store.capabilities` first. */
export class KvUnsupportedError extends KvError {
  constructor(operation: string, driver: string) {
    super(
      "KV_UNSUPPORTED",
      `${driver} does not support ${operation}; check store.capabilities before calling it or use a driver that does`,
    );
  }
}

export class KvClosedError extends KvError {
  constructor(driver: string) {
    super("KV_CLOSED", `the ${driver} store is closed; create a new store instead of reusing a closed one`);
  }
}

export class KvReadOnlyError extends KvError {
  constructor(operation: string) {
    super("KV_READ_ONLY", `${operation} refused: this store view is read-only`);
  }
}

/** Stored data cannot be read back (a corrupt file, a failed decryption, a foreign format). */
export class KvCorruptError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KV_CORRUPT", message, options);
  }
}

export class KvStorageFullError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KV_STORAGE_FULL", message, options);
  }
}

export class KvPermissionError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KV_PERMISSION", message, options);
  }
}

/** A value cannot be encoded or decoded by the codec (unsupported type, polluting key, bad JSON). */
export class KvCodecError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KV_CODEC", message, options);
  }
}

/** Any other engine failure, with the engine's own error as `cause`. */
export class KvDriverError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KV_DRIVER", message, options);
  }
}
