import { KvArgumentError, KvKeyError } from "./errors.js";

/** Default maximum key length in UTF-8 bytes, prefix included. Drivers may declare another. */
export const DEFAULT_MAX_KEY_BYTES = 1024;

const encoder = new TextEncoder();

/** UTF-8 length without allocating; exact for well-formed strings. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Refuses a key rather than ever rewriting it, so two distinct keys can never
 * collide in any driver. Lone surrogates are refused because UTF-8 engines
 * would turn them all into U+FFFD; NUL is refused because PostgreSQL text and
 * C-string based engines cannot hold it.
 */
export function assertValidKey(key: unknown, maxKeyBytes: number): asserts key is string {
  if (typeof key !== "string") throw new KvKeyError(`key must be a string, got ${typeof key}`);
  if (key.length === 0) throw new KvKeyError("key must not be empty");
  // Fast path: a UTF-16 unit is at most 3 UTF-8 bytes, so short keys need no count.
  if (key.length * 3 > maxKeyBytes) {
    const bytes = utf8Length(key);
    if (bytes > maxKeyBytes)
      throw new KvKeyError(
        `key is ${bytes} UTF-8 bytes; the limit of this store (after its prefix) is ${maxKeyBytes}`,
      );
  }
  if (key.includes("\0")) throw new KvKeyError("key must not contain NUL (U+0000)");
  if (!key.isWellFormed())
    throw new KvKeyError("key contains a lone surrogate; keys must be well-formed Unicode strings");
}

export function assertValidPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string") throw new KvKeyError(`prefix must be a string, got ${typeof prefix}`);
  if (prefix.includes("\0")) throw new KvKeyError("prefix must not contain NUL (U+0000)");
  if (!prefix.isWellFormed()) throw new KvKeyError("prefix contains a lone surrogate");
}

/**
 * For drivers whose cursor is the last key of the page (keyset pagination): a cursor comes from the
 * caller, and one of theirs is always a key, so what could not be one (a NUL, a lone surrogate) is
 * refused here with KvArgumentError instead of reaching the engine, which would fail on it with an
 * error about encodings or silently read it as another string. Any other string is a position
 * only: the driver's range still bounds what it lists.
 *
 * @example
 * assertKeysetCursor(cursor);
 * const rows = await client.range(prefix, cursor, limit);
 */
export function assertKeysetCursor(cursor: string | undefined): void {
  if (cursor !== undefined && (cursor.includes("\0") || !cursor.isWellFormed()))
    throw new KvArgumentError(
      "cursor is not one this store returned (it holds a NUL or a lone surrogate); pass the cursor of the previous page unchanged",
    );
}

export function encodeKey(key: string): Uint8Array {
  return encoder.encode(key);
}

/**
 * The smallest string greater than every string that starts with `prefix`, in
 * code-point order (which is also UTF-8 byte order and PostgreSQL `COLLATE "C"`
 * / SQLite BINARY order), or undefined when there is none. Lets SQL drivers
 * list a prefix as an index range `key >= prefix AND key < upper` instead of
 * LIKE, which would treat `%` and `_` in the prefix as wildcards.
 *
 * @example
 * prefixUpperBound("user:"); // "user;"
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    let last = cps.pop()!;
    if (last === 0x10ffff) continue;
    last += 1;
    if (last === 0xd800) last = 0xe000;
    cps.push(last);
    return String.fromCodePoint(...cps);
  }
  return undefined;
}
