import { createHash } from "node:crypto";
import type { TableNames } from "./schema.js";

/** `live` is true when the row has no deadline or its deadline is after `$now`. */
const live = (now: string) => `(expires_at IS NULL OR expires_at > ${now})`;

/**
 * Every statement a store runs, with a stable name per table so `pg` prepares
 * it once per connection and the hot path skips parse and plan.
 */
export function statements(n: TableNames) {
  const tag = `kvs_${createHash("sha256").update(n.id).digest("hex").slice(0, 12)}`;
  const t = n.table;
  const upsertTail = `ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, version = EXCLUDED.version`;
  const s = (name: string, text: string) => ({ name: `${tag}_${name}`, text });

  /** Listing variants: a separate statement per shape keeps each plan a plain index range scan. */
  const list = (values: boolean, upper: boolean, cursor: boolean) => {
    const cols = values ? "key, value, expires_at" : "key, expires_at";
    const where = [`key >= $1`, `${live("$2")}`];
    let i = 3;
    if (upper) where.push(`key < $${i++}`);
    if (cursor) where.push(`key > $${i++}`);
    return s(
      `list_${Number(values)}${Number(upper)}${Number(cursor)}`,
      `SELECT ${cols} FROM ${t} WHERE ${where.join(" AND ")} ORDER BY key LIMIT $${i}`,
    );
  };

  return {
    get: s("get", `SELECT value, expires_at FROM ${t} WHERE key = $1`),
    has: s("has", `SELECT 1 FROM ${t} WHERE key = $1 AND ${live("$2")}`),
    set: s("set", `INSERT INTO ${t} (key, value, expires_at) VALUES ($1, $2, $3) ${upsertTail}`),
    delete: s("del", `DELETE FROM ${t} WHERE key = $1 RETURNING expires_at`),
    getMany: s(
      "mget",
      `SELECT t.value, t.expires_at FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i)
       LEFT JOIN ${t} t ON t.key = k.key ORDER BY k.i`,
    ),
    setMany: s(
      "mset",
      `INSERT INTO ${t} (key, value, expires_at)
       SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[]) ${upsertTail}`,
    ),
    deleteMany: s("mdel", `DELETE FROM ${t} WHERE key = ANY($1::text[]) RETURNING key, expires_at`),
    // An expired row counts as absent: the conflict arm overwrites it, a live one is left alone.
    setIfAbsent: s(
      "sia",
      `INSERT INTO ${t} AS t (key, value, expires_at) VALUES ($1, $2, $3) ${upsertTail}
       WHERE t.expires_at IS NOT NULL AND t.expires_at <= $4 RETURNING t.version::text AS version`,
    ),
    getVersioned: s("vget", `SELECT value, expires_at, version::text AS version FROM ${t} WHERE key = $1`),
    getVersionedMany: s(
      "mvget",
      `SELECT t.value, t.expires_at, t.version::text AS version FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i)
       LEFT JOIN ${t} t ON t.key = k.key ORDER BY k.i`,
    ),
    // One statement: under READ COMMITTED a racing writer re-checks the version after the row lock, so one wins.
    compareAndSet: s(
      "cas",
      `UPDATE ${t} SET value = $2, expires_at = $3, version = nextval('${n.seqLiteral.replaceAll("'", "''")}')
       WHERE key = $1 AND version = $4::bigint AND ${live("$5")} RETURNING version::text AS version`,
    ),
    list,
    clearAll: s("clear", `DELETE FROM ${t}`),
    clearPrefix: s("clearp", `DELETE FROM ${t} WHERE key >= $1 AND key < $2`),
    clearPrefixOpen: s("clearpo", `DELETE FROM ${t} WHERE key >= $1`),
    // Bounded: at most $2 rows per statement, by physical address; the deadline is checked again
    // on delete so a row rewritten with a new TTL meanwhile survives.
    sweep: s(
      "sweep",
      `DELETE FROM ${t} WHERE ctid = ANY(ARRAY(
         SELECT ctid FROM ${t} WHERE expires_at <= $1 LIMIT $2
       )) AND expires_at <= $1`,
    ),
  };
}

export type Statements = ReturnType<typeof statements>;
