import { createHash } from "node:crypto";
import type { JsonValue, KvStore } from "@kvsession/kv";
import { json } from "@kvsession/kv";

/**
 * One key per (user, session): `<hash(userId)>:<session handle>`. Concurrent
 * logins of one user write different keys, so they never contend, and listing
 * is a prefix scan through the contract (works on every driver). The user ID is
 * hashed so any ID (with ":" or of any length) maps to a fixed, prefix-free key.
 */
export interface IndexEntry {
  createdAt: number;
  meta?: JsonValue;
}

const codec = json<IndexEntry>();

export function userKey(userId: string): string {
  return createHash("sha256").update(userId).digest("base64url");
}

export function createUserIndex(store: KvStore) {
  return {
    async put(userId: string, handle: string, entry: IndexEntry, expiresAt: number): Promise<void> {
      await store.set(`${userKey(userId)}:${handle}`, codec.encode(entry), { expiresAt });
    },
    async remove(userId: string, handle: string): Promise<boolean> {
      return store.delete(`${userKey(userId)}:${handle}`);
    },
    async has(userId: string, handle: string): Promise<boolean> {
      return store.has(`${userKey(userId)}:${handle}`);
    },
    /** Every indexed session of the user; bounded so a runaway index cannot exhaust memory. */
    async list(
      userId: string,
      max = 10_000,
    ): Promise<Array<{ handle: string; entry: IndexEntry | undefined }>> {
      const prefix = `${userKey(userId)}:`;
      const out: Array<{ handle: string; entry: IndexEntry | undefined }> = [];
      for await (const e of store.entries(prefix, 500)) {
        let entry: IndexEntry | undefined;
        try {
          entry = codec.decode(e.value);
        } catch {
          entry = undefined;
        }
        out.push({ handle: e.key.slice(prefix.length), entry });
        if (out.length >= max) break;
      }
      return out;
    },
  };
}

export type UserIndex = ReturnType<typeof createUserIndex>;
