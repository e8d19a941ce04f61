import { createHash, createHmac } from "node:crypto";
import type { JsonValue, KvStore } from "@kvsession/kv";
import { json } from "@kvsession/kv";

/**
 * The per-user index, under the session layer's `<ns>-user:` prefix:
 * - one entry per (user, session), `<userKey>:<handle>`, so concurrent logins of one user write
 *   different keys and never contend, and listing is a prefix scan that works on every driver;
 * - one "not before" time per user, `<userKey>`, written by `revokeUser`: a login that raced the
 *   revocation reads it after creating its record and ends itself.
 *
 * `userKey` is an HMAC of the user ID under a key derived from the secrets, so a store dump
 * confirms no user ID. Entries are written under the first secret's key; every secret's key
 * (and the unkeyed hash of earlier versions) is read, so rotating the secrets loses no entry,
 * and a session's entry is moved to the current key at its next write.
 */
export interface IndexEntry {
  createdAt: number;
  meta?: JsonValue;
}

export interface IndexedSession {
  handle: string;
  entry: IndexEntry | undefined;
}

const codec = json<IndexEntry>();
const PAGE = 500;

/** How earlier versions keyed the index (a plain SHA-256): still read, never written. */
function legacyUserKey(userId: string): string {
  return createHash("sha256").update(userId).digest("base64url");
}

function keyedUserKey(key: Buffer, userId: string): string {
  return createHmac("sha256", key).update(userId).digest("base64url");
}

/**
 * @param keys one derived key per secret, the current one first.
 */
export function createUserIndex(store: KvStore, keys: readonly Buffer[]) {
  const current = (userId: string) => keyedUserKey(keys[0]!, userId);
  /** Every key this user's entries may live under: the current one first. */
  const variants = (userId: string): string[] => [
    ...new Set([...keys.map((k) => keyedUserKey(k, userId)), legacyUserKey(userId)]),
  ];
  /** Names the key entries are written under now; stored in each record so a moved key is noticed. */
  const generation = keyedUserKey(keys[0]!, "").slice(0, 8);

  return {
    generation,

    async put(userId: string, handle: string, entry: IndexEntry, expiresAt: number): Promise<void> {
      await store.set(`${current(userId)}:${handle}`, codec.encode(entry), { expiresAt });
    },

    /** Files an existing entry under the current key and drops its copies under the others. */
    async refile(userId: string, handle: string, entry: IndexEntry, expiresAt: number): Promise<void> {
      const [now, ...old] = variants(userId);
      await store.set(`${now}:${handle}`, codec.encode(entry), { expiresAt });
      await store.deleteMany(old.map((u) => `${u}:${handle}`));
    },

    async remove(userId: string, handle: string): Promise<void> {
      await store.deleteMany(variants(userId).map((u) => `${u}:${handle}`));
    },

    async removeMany(userId: string, handles: readonly string[]): Promise<void> {
      const us = variants(userId);
      await store.deleteMany(handles.flatMap((h) => us.map((u) => `${u}:${h}`)));
    },

    /** Every indexed session of the user, page by page, each handle once; no cap. */
    async *pages(userId: string): AsyncGenerator<IndexedSession[]> {
      const seen = new Set<string>();
      for (const u of variants(userId)) {
        const prefix = `${u}:`;
        let page: IndexedSession[] = [];
        for await (const e of store.entries(prefix, PAGE)) {
          const handle = e.key.slice(prefix.length);
          if (seen.has(handle)) continue;
          seen.add(handle);
          let entry: IndexEntry | undefined;
          try {
            entry = codec.decode(e.value);
          } catch {
            entry = undefined;
          }
          page.push({ handle, entry });
          if (page.length >= PAGE) {
            yield page;
            page = [];
          }
        }
        if (page.length > 0) yield page;
      }
    },

    /** The latest time `revokeUser` ended this user's sessions at, or 0. */
    async notBefore(userId: string): Promise<number> {
      const raw = await store.getMany(variants(userId));
      let max = 0;
      for (const b of raw) {
        const n = b === undefined ? Number.NaN : Number(Buffer.from(b).toString("latin1"));
        if (Number.isSafeInteger(n) && n > max) max = n;
      }
      return max;
    },

    async setNotBefore(userId: string, at: number, expiresAt: number): Promise<void> {
      await store.set(current(userId), Buffer.from(String(at), "latin1"), { expiresAt });
    },
  };
}

export type UserIndex = ReturnType<typeof createUserIndex>;
