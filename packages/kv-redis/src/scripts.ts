import { createHash } from "node:crypto";

/**
 * Every script takes KEYS[1] = the value's key and KEYS[2] = its version
 * record (same slot). Invariant kept by all of them: whatever writes a value
 * also drops or replaces its version record, and a record expires at the very
 * deadline of its value, so a version can never describe a later value.
 */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

/** ARGV: value, px ("" = no expiry). A plain write invalidates the version. */
export const SET = script(`
if ARGV[2] == "" then redis.call("SET", KEYS[1], ARGV[1]) else redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) end
redis.call("DEL", KEYS[2])
return 1`);

/** ARGV: value, px. SET NX, and a stale record from an evicted value must not survive it. */
export const SET_IF_ABSENT = script(`
local ok
if ARGV[2] == "" then ok = redis.call("SET", KEYS[1], ARGV[1], "NX") else ok = redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) end
if not ok then return 0 end
redis.call("DEL", KEYS[2])
return 1`);

/** Returns the number of values deleted (0 or 1). */
export const DELETE = script(`
local n = redis.call("DEL", KEYS[1])
redis.call("DEL", KEYS[2])
return n`);

/**
 * ARGV: a fresh version, used only when the value has none yet.
 * Returns nil, or { value, version, remaining ms (-1 = no expiry) }.
 */
export const GET_VERSIONED = script(`
local v = redis.call("GET", KEYS[1])
if not v then return nil end
local t = redis.call("PEXPIRETIME", KEYS[1])
local n = redis.call("GET", KEYS[2])
if not n then
  n = ARGV[1]
  if t > 0 then redis.call("SET", KEYS[2], n, "PXAT", t) else redis.call("SET", KEYS[2], n) end
end
return { v, n, redis.call("PTTL", KEYS[1]) }`);

/** ARGV: expected version ("" = absent), value, px ("" = none), the new version. Returns 1 when written. */
export const COMPARE_AND_SET = script(`
if ARGV[1] == "" then
  if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
elseif redis.call("GET", KEYS[2]) ~= ARGV[1] or redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
if ARGV[3] == "" then
  redis.call("SET", KEYS[1], ARGV[2])
  redis.call("SET", KEYS[2], ARGV[4])
else
  redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
  redis.call("SET", KEYS[2], ARGV[4], "PXAT", redis.call("PEXPIRETIME", KEYS[1]))
end
return 1`);
