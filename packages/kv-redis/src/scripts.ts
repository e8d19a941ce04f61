import { createHash } from "node:crypto";

/**
 * Every script takes KEYS[1] = the value's key and KEYS[2] = its version
 * record (same slot). Invariant kept by all of them: whatever writes a value
 * also drops or replaces its version record, and a record expires with its
 * value (the same relative TTL, set in the same script), so a version can never
 * describe a later value. Should the two deadlines ever differ by a clock tick,
 * a record outliving its value describes nothing (every script checks that the
 * value exists) and one ending first only costs a compare-and-set a retry.
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
 * For a value that has no version record yet (written by a plain `set`): reads are an `MGET` of
 * record and value otherwise. ARGV: a fresh version, used only when the value has none yet.
 * Returns nil, or { value, version, remaining ms (-1 = no expiry) }.
 */
export const GET_VERSIONED = script(`
local v = redis.call("GET", KEYS[1])
if not v then return nil end
local n = redis.call("GET", KEYS[2])
local t = redis.call("PTTL", KEYS[1])
if not n then
  n = ARGV[1]
  if t > 0 then redis.call("SET", KEYS[2], n, "PX", t) else redis.call("SET", KEYS[2], n) end
end
return { v, n, t }`);

/**
 * ARGV: expected version ("" = absent), value, px ("" = none), the new version. Returns 1 when written.
 * `SET NX` / `SET XX` check the value's existence in the same call that writes it: three calls
 * for an update, two for a create (each call inside a script costs the server time).
 */
export const COMPARE_AND_SET = script(`
local ok
if ARGV[1] == "" then
  if ARGV[3] == "" then ok = redis.call("SET", KEYS[1], ARGV[2], "NX") else ok = redis.call("SET", KEYS[1], ARGV[2], "NX", "PX", ARGV[3]) end
elseif redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return 0
elseif ARGV[3] == "" then
  ok = redis.call("SET", KEYS[1], ARGV[2], "XX")
else
  ok = redis.call("SET", KEYS[1], ARGV[2], "XX", "PX", ARGV[3])
end
if not ok then return 0 end
if ARGV[3] == "" then redis.call("SET", KEYS[2], ARGV[4]) else redis.call("SET", KEYS[2], ARGV[4], "PX", ARGV[3]) end
return 1`);

/*
 * Batch forms, for operations that many callers issued in one turn of the
 * event loop (see createCoalescer in @kvsession/kv). Each loops over its KEYS pairs doing exactly
 * what the single form does, so each operation keeps its own semantics; the
 * whole batch is atomic, which is more than any one of them needs.
 */

/**
 * KEYS: value, version pairs. ARGV: expected, value, px, new version — four per pair. Returns 1 or 0
 * per pair, or the error text of a pair whose version record could not be read (another program's
 * non-string value): an error must not end the script, since the pairs before it are already written
 * and a caller told they failed would apply its change again.
 */
export const COMPARE_AND_SET_MANY = script(`
local out = {}
for i = 1, #KEYS, 2 do
  local a = (i - 1) * 2
  local expected, value, px, nv = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local ok = false
  local current = expected ~= "" and redis.pcall("GET", KEYS[i + 1])
  if type(current) == "table" and current.err then
    out[#out + 1] = current.err
  else
    if expected == "" then
      if px == "" then ok = redis.call("SET", KEYS[i], value, "NX") else ok = redis.call("SET", KEYS[i], value, "NX", "PX", px) end
    elseif current == expected then
      if px == "" then ok = redis.call("SET", KEYS[i], value, "XX") else ok = redis.call("SET", KEYS[i], value, "XX", "PX", px) end
    end
    if ok then
      if px == "" then redis.call("SET", KEYS[i + 1], nv) else redis.call("SET", KEYS[i + 1], nv, "PX", px) end
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  end
end
return out`);
