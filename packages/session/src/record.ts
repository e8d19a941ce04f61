import { type JsonValue, json, type KvVersion } from "@kvsession/kv";
import { SessionDataError } from "./errors.js";
import type { SessionData } from "./types.js";

/** What the store holds per session (JSON through the kv json codec). */
export interface StoredRecord {
  data: SessionData;
  createdAt: number;
  lastSeenAt: number;
  userId?: string;
  meta?: JsonValue;
  /** Which key the user index entry is filed under (see `UserIndex.generation`). */
  ix?: string;
  /** Serialised mode: the request that holds this session now, and until when. */
  lease?: Lease;
  flash?: Record<string, JsonValue[]>;
  /** This session's own cookie lifetime (`Session.setCookieMaxAge`); absent: the app's setting. */
  cookieMaxAge?: number | null;
}

/**
 * A record as this process last wrote it: its bytes (decoded afresh by whoever builds on them, so
 * no request sees objects another request holds) and the version the store answered (null: the
 * store keeps no versions).
 */
export interface Known {
  bytes: Uint8Array;
  version: KvVersion;
}

/** A record as read (or decoded from what this process wrote): absent, a tombstone or a record, and its version. */
export interface Read {
  rec: StoredRecord | Tombstone | undefined;
  version: KvVersion;
}

/** What a conditional write answers: what it wrote, or false when the record had changed. */
export type Written = Known | false;

export interface Lease {
  token: string;
  until: number;
}

/** Written over a regenerated session's old record: it changes the version atomically, so late writers see it gone. */
export interface Tombstone {
  movedAt: number;
}

const codec = json<unknown>();
const FORBIDDEN = new Set(["__proto__", "constructor", "prototype"]);

export function assertDataKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key === "")
    throw new SessionDataError("session keys must be non-empty strings");
  if (FORBIDDEN.has(key))
    throw new SessionDataError(`session key "${key}" is refused to prevent prototype pollution`);
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A decoded value is a live record, a tombstone, or garbage (treated as absent). */
export function classify(v: unknown): StoredRecord | Tombstone | undefined {
  if (!isObj(v)) return undefined;
  if (typeof v.movedAt === "number") return { movedAt: v.movedAt };
  if (!isObj(v.data) || typeof v.createdAt !== "number" || typeof v.lastSeenAt !== "number") return undefined;
  if (v.userId !== undefined && typeof v.userId !== "string") return undefined;
  if (v.flash !== undefined && !isObj(v.flash)) return undefined;
  if (!isCookieMaxAge(v.cookieMaxAge)) return undefined;
  if (v.lease !== undefined) {
    const l = v.lease as Record<string, unknown>;
    if (!isObj(l) || typeof l.token !== "string" || typeof l.until !== "number") return undefined;
  }
  return v as unknown as StoredRecord;
}

export const isRecord = (v: StoredRecord | Tombstone | undefined): v is StoredRecord =>
  v !== undefined && "data" in v;

/** A copy of a record without its lease (serialised mode), for the holder to work on or to write back. */
export function withoutLease(rec: StoredRecord): StoredRecord {
  const copy = { ...rec };
  delete copy.lease;
  return copy;
}

/** When the session ends if nobody comes back: the earlier of the idle and absolute deadlines. */
export function deadlineOf(r: StoredRecord, idleMs: number, absoluteMs: number): number {
  return Math.min(r.lastSeenAt + idleMs, r.createdAt + absoluteMs);
}

export const DELETED: unique symbol = Symbol("deleted");
/** `update()`'s function, applied to the value stored at write time, so it never works on a stale read. */
export class Update {
  constructor(readonly fn: (current: JsonValue | undefined) => JsonValue | undefined) {}
}
export type Patch = Map<string, JsonValue | typeof DELETED | Update>;

/** This request's changes, applied on top of whatever record the store holds now. */
export interface Changes {
  patch: Patch;
  flashAdd: Map<string, JsonValue[]>;
  /** How many messages of each type this request read (and so removes). */
  flashTaken: Map<string, number>;
  /** A new cookie lifetime for this session; `DELETED`: back to the app's setting. */
  cookieMaxAge?: number | null | typeof DELETED;
}

export const noChanges = (c: Changes) =>
  c.patch.size === 0 && c.flashAdd.size === 0 && c.flashTaken.size === 0 && c.cookieMaxAge === undefined;

/** What a stored record or sealed payload may hold as its cookie lifetime. */
export const isCookieMaxAge = (v: unknown): v is number | null | undefined =>
  v === undefined || v === null || (Number.isSafeInteger(v) && (v as number) > 0);

/** The session's cookie lifetime once this request's change (if any) is applied. */
export function applyCookieMaxAge(
  stored: number | null | undefined,
  c: Changes | undefined,
): number | null | undefined {
  const next = c?.cookieMaxAge;
  if (next === undefined) return stored;
  return next === DELETED ? undefined : next;
}

const NO_FLASH_ADD = new Map<string, JsonValue[]>();
const NO_FLASH_TAKEN = new Map<string, number>();

/** Flash maps are a shared empty one until a request actually uses flash (most never do). */
export function newChanges(): Changes {
  return { patch: new Map(), flashAdd: NO_FLASH_ADD, flashTaken: NO_FLASH_TAKEN };
}

export function withFlash(c: Changes): Changes {
  if (c.flashAdd === NO_FLASH_ADD) c.flashAdd = new Map();
  if (c.flashTaken === NO_FLASH_TAKEN) c.flashTaken = new Map();
  return c;
}

function updated(key: string, u: Update, current: JsonValue | undefined): JsonValue | undefined {
  const value = u.fn(current);
  // The function's result never passed set()'s check: check it here, where it is made.
  if (value !== undefined) {
    try {
      codec.encode(value);
    } catch (err) {
      throw new SessionDataError(`cannot store session key "${key}": ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return value;
}

export function applyData(data: SessionData, patch: Patch): SessionData {
  if (patch.size === 0) return data;
  const out: SessionData = { ...data };
  for (const [k, v] of patch) {
    const value = v instanceof Update ? updated(k, v, out[k]) : v;
    if (value === DELETED || value === undefined) delete out[k];
    else out[k] = value;
  }
  return out;
}

export function applyFlash(
  flash: Record<string, JsonValue[]> | undefined,
  c: Changes,
): Record<string, JsonValue[]> | undefined {
  if (c.flashAdd.size === 0 && c.flashTaken.size === 0) return flash;
  const out: Record<string, JsonValue[]> = { ...flash };
  for (const [type, n] of c.flashTaken) {
    const rest = (out[type] ?? []).slice(n);
    if (rest.length === 0) delete out[type];
    else out[type] = rest;
  }
  for (const [type, msgs] of c.flashAdd) out[type] = [...(out[type] ?? []), ...msgs];
  return Object.keys(out).length === 0 ? undefined : out;
}
