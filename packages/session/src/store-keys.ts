import { VERIFIED_IDS_MAX } from "./verified-ids.js";

/**
 * The store key of each session handle (`sess:` + handle), built once and kept.
 * The core reads and writes a session on nearly every request, and a key built
 * afresh each time is a new string the store must flatten and hash again,
 * where a kept one carries the hash V8 cached in it. Bounded like the verified IDs whose
 * handles it serves: the oldest entry goes first.
 */
export interface StoreKeys {
  /** `prefix + handle`, the same string object while the handle stays kept. */
  of(handle: string): string;
  /** How many handles are kept now (for tests). */
  size(): number;
}

export function createStoreKeys(prefix: string, max = VERIFIED_IDS_MAX): StoreKeys {
  const kept = new Map<string, string>();
  return {
    of(handle) {
      let key = kept.get(handle);
      if (key === undefined) {
        if (kept.size >= max) kept.delete(kept.keys().next().value as string);
        key = prefix + handle;
        kept.set(handle, key);
      }
      return key;
    },
    size: () => kept.size,
  };
}
