import { KvArgumentError } from "@kvsession/kv";
import { assertValidPrefix } from "@kvsession/kv/driver";
import { prepareSlotTags, slotOf, tagForSlot } from "./slots.js";

/**
 * How a store lays out its keys inside Redis:
 * - the value of key `k` lives, as raw bytes, at `<namespace>k`;
 * - its compare-and-set version, when one was ever handed out, at
 *   `<namespace>\0v{<tag>}k`, where `<tag>` is a hash tag of the value's own
 *   slot, so one Lua script can touch both keys in a Cluster. Keys never
 *   contain NUL (validated above the driver), so the two can never collide,
 *   and listing skips the `\0` records.
 */
export interface KeySpace {
  readonly namespace: string;
  data(key: string): string;
  version(key: string): string;
  /** A SCAN MATCH pattern for every data key starting with `prefix`, glob characters escaped. */
  match(prefix: string): string;
  /** Whether a scanned Redis key is a version record rather than a data key. */
  isVersionRecord(redisKey: string): boolean;
}

/** Escapes the characters SCAN MATCH treats as glob syntax, so a prefix matches literally. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

export function createKeySpace(namespace: string): KeySpace {
  assertValidPrefix(namespace);
  const open = namespace.indexOf("{");
  let pinned = false;
  if (open >= 0) {
    const close = namespace.indexOf("}", open + 1);
    // A complete non-empty tag pins the whole namespace to one slot; anything else would make
    // the slot of a value and of its version record disagree.
    if (close <= open + 1)
      throw new KvArgumentError(
        `namespace "${namespace}" has an unbalanced or empty hash tag; use no braces, or one complete tag such as "{app}:" to pin every key to one Cluster slot`,
      );
    pinned = true;
  }
  if (!pinned) prepareSlotTags();
  const nsLen = namespace.length;
  const versionHead = `${namespace}\0v`;
  return {
    namespace,
    data: (key) => namespace + key,
    version: pinned
      ? (key) => `${versionHead}:${key}`
      : (key) => `${versionHead}{${tagForSlot(slotOf(namespace + key))}}${key}`,
    match: (prefix) => `${escapeGlob(namespace + prefix)}*`,
    isVersionRecord: (k) => k.charCodeAt(nsLen) === 0,
  };
}
