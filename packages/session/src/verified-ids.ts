import { timingSafeEqual } from "node:crypto";
import { hashId, ID_CHARS, isWellFormedId, SIG_CHARS, signId, signingKeyOf } from "./crypto.js";

/** Enough for the sessions active on one server over minutes; ~250 bytes each (2.5 MB at most). */
export const VERIFIED_IDS_MAX = 10_000;

/**
 * Cookie verification with a memory: `unsignId` and `hashId` (an HMAC and a
 * SHA-256) are a large share of a whole request's work, and a returning browser sends
 * the same cookie on every request. So the signature and store handle of an ID
 * that verified are kept, and the next cookie carrying that ID is checked
 * against the kept signature instead of recomputing it.
 *
 * What does not change: a hit still compares the whole signature in constant
 * time (and checks its shape first, as `unsignId` does, so no non-ASCII twin
 * can pass). Only IDs that verified are kept, so forged cookies cannot churn
 * the memory. The kept signature is always the current key's, so a cookie
 * signed with an older key takes the full path and is reported `stale`, for the
 * session layer to re-sign it. The keys of one `Sessions`
 * never change, so a kept signature never goes stale; whether the session
 * still exists is the store's to say, as before. Bounded: the oldest entries
 * go first.
 */
export interface VerifiedIds {
  /** The ID inside a cookie value, or undefined: the same answer as `unsignId`. */
  verify(value: string): string | undefined;
  /** `hashId(id)`, kept for an ID that verified or was signed here. */
  handle(id: string): string;
  /** Whether a value that verified was signed with an older key than the current one. */
  stale(value: string): boolean;
  /** `signId(keys, id)`, remembering the ID as verified (a new session's next request hits). */
  sign(id: string, handle: string): string;
  /** How many IDs are kept now (for tests and metrics). */
  size(): number;
}

interface Kept {
  /** The signature's base64url text, as bytes. */
  sig: Buffer;
  handle: string;
}

export function createVerifiedIds(keys: readonly Buffer[], max = VERIFIED_IDS_MAX): VerifiedIds {
  const kept = new Map<string, Kept>();

  function keep(id: string, sig: string, handle: string): void {
    if (kept.size >= max) kept.delete(kept.keys().next().value as string);
    kept.set(id, { sig: Buffer.from(sig, "latin1"), handle });
  }

  return {
    verify(value) {
      if (value.length !== ID_CHARS + 1 + SIG_CHARS || value.charCodeAt(ID_CHARS) !== 46) return undefined;
      const id = value.slice(0, ID_CHARS);
      const known = kept.get(id);
      if (known !== undefined) {
        const sig = value.slice(ID_CHARS + 1);
        // The shape check first: latin1 keeps only the low byte, so "Ł" would otherwise pass for "A".
        if (isWellFormedId(sig) && timingSafeEqual(known.sig, Buffer.from(sig, "latin1"))) return id;
      }
      const k = signingKeyOf(keys, value);
      if (k < 0) return undefined;
      if (known === undefined) {
        const current = k === 0 ? value : signId(keys, id);
        keep(id, current.slice(ID_CHARS + 1), hashId(id));
      }
      return id;
    },
    stale(value) {
      const known = kept.get(value.slice(0, ID_CHARS));
      return known === undefined || known.sig.toString("latin1") !== value.slice(ID_CHARS + 1);
    },
    handle(id) {
      return kept.get(id)?.handle ?? hashId(id);
    },
    sign(id, handle) {
      const value = signId(keys, id);
      if (!kept.has(id)) keep(id, value.slice(ID_CHARS + 1), handle);
      return value;
    },
    size: () => kept.size,
  };
}
