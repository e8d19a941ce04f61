import { KvArgumentError } from "./errors.js";
import type { SetOptions } from "./types.js";

/** Largest TTL accepted: ~100 years, well inside every engine's range. */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;

/**
 * Turns the public TTL options (relative ms, or absolute epoch ms) into the
 * absolute deadline drivers store, so every driver shares one unit.
 */
export function deadlineOf(options: SetOptions | undefined, now = Date.now()): number | undefined {
  if (options === undefined) return undefined;
  const { ttl, expiresAt } = options;
  if (ttl !== undefined) {
    if (expiresAt !== undefined) throw new KvArgumentError("pass either ttl or expiresAt, not both");
    if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_TTL_MS)
      throw new KvArgumentError(
        `ttl must be a positive number of milliseconds up to ${MAX_TTL_MS}, got ${String(ttl)}; omit it for no expiry`,
      );
    return now + Math.ceil(ttl);
  }
  if (expiresAt !== undefined) {
    if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt) || expiresAt <= 0)
      throw new KvArgumentError(`expiresAt must be an epoch time in milliseconds, got ${String(expiresAt)}`);
    return Math.ceil(expiresAt);
  }
  return undefined;
}

/** An entry whose deadline is now or past is expired: the boundary instant counts as expired. */
export function isExpired(expiresAt: number | undefined, now = Date.now()): boolean {
  return expiresAt !== undefined && expiresAt <= now;
}
