import { KvArgumentError } from "@kvsession/kv";
import type pg from "pg";

/** The schema version this code writes; older tables are migrated forward on open. */
export const SCHEMA_VERSION = 1;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** PostgreSQL truncates identifiers at 63 bytes; the longest derived name adds "_version_seq". */
const MAX_TABLE = 63 - "_version_seq".length;

/** Quoted, validated names of everything one store owns. */
export interface TableNames {
  /** `"schema"."table"` or `"table"`, ready to splice into SQL. */
  table: string;
  seq: string;
  expiresIndex: string;
  meta: string;
  /** Unquoted `schema.table`, the key of this table in the meta table. */
  id: string;
  /** The `schema.seq` spelling regclass-taking functions (nextval) need. */
  seqLiteral: string;
}

function ident(kind: string, name: string, max = 63): string {
  if (!IDENT.test(name) || name.length > max)
    throw new KvArgumentError(
      `PostgreSQL ${kind} name "${name}" must be 1-${max} ASCII letters, digits or underscores, not starting with a digit`,
    );
  return `"${name}"`;
}

export function tableNames(table: string, schema: string | undefined): TableNames {
  const t = ident("table", table, MAX_TABLE);
  const s = schema === undefined ? undefined : ident("schema", schema);
  const q = (n: string) => (s ? `${s}.${n}` : n);
  const seq = q(`"${table}_version_seq"`);
  return {
    table: q(t),
    seq,
    expiresIndex: `"${table}_expires_idx"`,
    meta: q(`"kvsession_meta"`),
    id: schema ? `${schema}.${table}` : table,
    seqLiteral: seq,
  };
}

/**
 * Each step takes a table from version i to i + 1. Appending a step is the
 * whole procedure for changing the layout later; steps already applied are
 * never re-run (the meta table remembers).
 */
function migrations(n: TableNames): string[][] {
  return [
    [
      `CREATE SEQUENCE IF NOT EXISTS ${n.seq}`,
      // COLLATE "C": code-point order, so keyset listing and prefix ranges match the contract on any server locale.
      `CREATE TABLE IF NOT EXISTS ${n.table} (
        key text COLLATE "C" PRIMARY KEY,
        value bytea NOT NULL,
        expires_at bigint,
        version bigint NOT NULL DEFAULT nextval('${n.seqLiteral.replaceAll("'", "''")}')
      )`,
      `ALTER SEQUENCE ${n.seq} OWNED BY ${n.table}.version`,
      `CREATE INDEX IF NOT EXISTS ${n.expiresIndex} ON ${n.table} (expires_at) WHERE expires_at IS NOT NULL`,
    ],
  ];
}

/**
 * Versions come from a sequence owned by the table, so dropping the table drops the sequence, and
 * a table created again under the same name would hand out its versions again: a compare-and-set
 * holding a version of the dropped table would succeed on the new one. So a table's sequence
 * starts at the server's clock in milliseconds times this, never moving back: every earlier table
 * of the name started at an earlier millisecond and would have had to write this many versions per
 * millisecond of its life to reach the new start, far beyond what any server writes.
 */
const VERSIONS_PER_MS = 1n << 20n;

function startVersions(n: TableNames): string {
  const seq = `'${n.seqLiteral.replaceAll("'", "''")}'`;
  return `SELECT setval(${seq}, greatest(
    (SELECT last_value FROM ${n.seq}),
    (extract(epoch FROM clock_timestamp()) * 1000)::bigint * ${VERSIONS_PER_MS}
  ))`;
}

/**
 * Creates or migrates the table in one transaction under an advisory lock, so
 * app servers starting together neither race on CREATE (which is not
 * concurrency-safe even with IF NOT EXISTS) nor apply a step twice.
 */
export async function migrate(pool: pg.Pool, n: TableNames, schema: string | undefined): Promise<void> {
  const client = await pool.connect();
  let failed = false;
  try {
    await client.query("BEGIN");
    // A pool's statement_timeout bounds the app's queries, not start-up: waiting for another server's
    // migration, or a step on a large table, must not fail every start.
    await client.query("SET LOCAL statement_timeout = 0");
    await client.query("SELECT pg_advisory_xact_lock(hashtext('kvsession:migrate'))");
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${n.meta} (table_name text PRIMARY KEY, schema_version integer NOT NULL)`,
    );
    const res = await client.query<{ schema_version: number }>(
      `SELECT schema_version FROM ${n.meta} WHERE table_name = $1`,
      [n.id],
    );
    const exists = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [n.table]);
    // A table dropped by hand leaves its meta row behind: start over rather than trust it.
    const current = exists.rows[0]?.present ? (res.rows[0]?.schema_version ?? 0) : 0;
    if (current > SCHEMA_VERSION)
      throw new KvArgumentError(
        `table ${n.id} has schema version ${current}, newer than this @kvsession/kv-postgres (${SCHEMA_VERSION}); upgrade the package`,
      );
    const steps = migrations(n);
    for (let v = current; v < SCHEMA_VERSION; v++) for (const sql of steps[v] ?? []) await client.query(sql);
    if (!exists.rows[0]?.present) await client.query(startVersions(n));
    if (current < SCHEMA_VERSION)
      await client.query(
        `INSERT INTO ${n.meta} (table_name, schema_version) VALUES ($1, $2)
         ON CONFLICT (table_name) DO UPDATE SET schema_version = EXCLUDED.schema_version`,
        [n.id, SCHEMA_VERSION],
      );
    await client.query("COMMIT");
  } catch (error) {
    failed = true;
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    // A client whose transaction failed mid-way may be in a broken state: do not return it to the pool.
    client.release(failed);
  }
}
