import { KvArgumentError } from "@kvsession/kv";

/**
 * Key <-> file name. A key is percent-encoded into `[a-z0-9_-]` plus `%XX`
 * escapes (uppercase hex) of its UTF-8 bytes: reversible, no `.`, `/`, `\`,
 * NUL or uppercase letter can reach the file system (so `../x` is a plain
 * name, and "a" and "A" never collide on case-insensitive file systems), and
 * the encoding of a prefix is a prefix of the encoding (listing filters on
 * encoded names without decoding).
 */
const ESCAPE = /%[0-9A-F]{2}|[A-Z.!~*'()]/g;

const PLAIN = /^[a-z0-9_-]+$/;

export function encodeKey(key: string): string {
  if (PLAIN.test(key)) return key; // the common case needs no escaping
  const e = encodeURIComponent(key);
  return e.replace(ESCAPE, (m) => (m.length === 3 ? m : `%${m.charCodeAt(0).toString(16).toUpperCase()}`));
}

/** The key of a file name encodeKey produced; KvArgumentError for a name that is no percent-encoded UTF-8. */
export function decodeName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    throw new KvArgumentError(`"${name.slice(0, 80)}" is not a kv-fs file name (its escapes are not UTF-8)`);
  }
}

/**
 * The key whose file `name` is, in shard `shard`; undefined for a file kv-fs never writes there
 * (dropped into the directory by something else), which listing, clear() and the sweep skip. Only
 * the one spelling encodeKey gives a key is that key's file: "%FF" is no UTF-8, "%61" is not the
 * file of "a" (that is "a"), a NUL is no key, and a key's file lives in its own shard only.
 */
export function keyOfName(name: string, shard: number): string | undefined {
  let key: string;
  try {
    key = decodeURIComponent(name);
  } catch {
    return undefined;
  }
  return key.includes("\0") || encodeKey(key) !== name || shardOf(key) !== shard ? undefined : key;
}

/** A file name produced by encodeKey: the only names listing and clearing ever touch. */
export const KEY_NAME = /^(?:[a-z0-9_-]|%[0-9A-F]{2})+$/;

/** Shards: 4096 directories named by 3 hex digits of a hash of the key, so a million keys make ~250 files per directory. */
export const SHARDS = 4096;

const SHARD_NAMES = Array.from({ length: SHARDS }, (_, i) => i.toString(16).padStart(3, "0"));

export function shardName(index: number): string {
  return SHARD_NAMES[index]!;
}

/** FNV-1a over the UTF-16 code units: cheap, stable across platforms, part of the on-disk format. */
export function shardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) & (SHARDS - 1);
}

/**
 * Longest file-name segment. Names are limited to 255 bytes; a longer encoded
 * key is split into directories `chunk+/chunk+/last` (`+` never occurs in an
 * encoded name, so a directory can never collide with a key's file).
 * 200 leaves room for the `.lock` and `.<random>.tmp` siblings.
 */
export const SEGMENT = 200;

/** The path of a key's file relative to its shard directory, as segments. */
export function segments(encoded: string): string[] {
  if (encoded.length <= SEGMENT) return [encoded];
  const out: string[] = [];
  let rest = encoded;
  while (rest.length > SEGMENT) {
    let cut = SEGMENT;
    // Never split inside a %XX escape.
    if (rest[cut - 1] === "%") cut -= 1;
    else if (rest[cut - 2] === "%") cut -= 2;
    out.push(`${rest.slice(0, cut)}+`);
    rest = rest.slice(cut);
  }
  out.push(rest);
  return out;
}
