import { KvArgumentError, KvPermissionError } from "@kvsession/kv";
import type Database from "better-sqlite3";

/** The table layout this code writes; older tables are migrated forward on open. */
export const SCHEMA_VERSION = 1;

/** One row per store table: its layout version and its version epoch (see statements.ts). */
export const META_TABLE = "kvsession_meta";

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function checkTableName(table: string): string {
  if (!IDENT.test(table) || /^sqlite_/i.test(table) || table.toLowerCase() === META_TABLE)
    throw new KvArgumentError(
      `SQLite table name "${table}" must be 1-63 ASCII letters, digits or underscores, not starting with a digit, "sqlite_" or naming "${META_TABLE}"`,
    );
  return table;
}

/**
 * Each step takes a table from version i to i + 1; appending a step is the
 * whole procedure for changing the layout later.
 */
function migrations(table: string): string[][] {
  const t = `"${table}"`;
  return [
    [
      // WITHOUT ROWID: the row lives in the primary-key b-tree, so a get is one descent.
      // TEXT compares with BINARY collation = UTF-8 bytes = code-point order, the contract's listing order.
      `CREATE TABLE IF NOT EXISTS ${t} (
        key TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL,
        expires_at INTEGER,
        epoch INTEGER NOT NULL,
        gen INTEGER NOT NULL
      ) WITHOUT ROWID`,
      `CREATE INDEX IF NOT EXISTS "${table}_expires" ON ${t} (expires_at) WHERE expires_at IS NOT NULL`,
    ],
  ];
}

/**
 * Creates or migrates the table under BEGIN IMMEDIATE, so processes opening the
 * same file together do not race. A read-only connection only checks.
 */
export function migrate(db: Database.Database, table: string): void {
  const readMeta = () => {
    const hasMeta = db
      .prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`)
      .get(META_TABLE);
    const hasTable = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`).get(table);
    const row = hasMeta
      ? (db.prepare(`SELECT schema_version FROM ${META_TABLE} WHERE table_name = ?`).get(table) as
          | { schema_version: number }
          | undefined)
      : undefined;
    // A table dropped by hand leaves its meta row behind: start over rather than trust it.
    return hasTable ? (row?.schema_version ?? 0) : 0;
  };
  // SQLite matches table names ignoring case, and this code's own lookups do not: a name that differs
  // from an existing table's only in case would share its rows under another epoch. Refused instead.
  const checkCase = () => {
    const other = db
      .prepare(
        `SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE AND name <> ?`,
      )
      .get(table, table) as { name: string } | undefined;
    if (other)
      throw new KvArgumentError(
        `table "${table}" would be the existing table "${other.name}": SQLite table names ignore case, so the two would share their keys; use "${other.name}", or a name that differs in more than case`,
      );
  };
  const tooNew = (v: number) =>
    new KvArgumentError(
      `table "${table}" has schema version ${v}, newer than this @kvsession/kv-sqlite (${SCHEMA_VERSION}); upgrade the package`,
    );

  if (db.readonly) {
    checkCase();
    const current = readMeta();
    if (current > SCHEMA_VERSION) throw tooNew(current);
    if (current < SCHEMA_VERSION)
      throw new KvPermissionError(
        `table "${table}" is missing or at schema version ${current} and the database is open read-only; open it writable once so the store can create or migrate it`,
      );
    return;
  }

  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS ${META_TABLE} (
      table_name TEXT PRIMARY KEY NOT NULL,
      schema_version INTEGER NOT NULL,
      epoch INTEGER NOT NULL
    )`);
    checkCase();
    const current = readMeta();
    if (current > SCHEMA_VERSION) throw tooNew(current);
    if (current === SCHEMA_VERSION) return;
    const steps = migrations(table);
    for (let v = current; v < SCHEMA_VERSION; v++) for (const sql of steps[v] ?? []) db.exec(sql);
    // A re-created table starts above every epoch its name had, in any case (SQLite's names ignore
    // it), so no version handed out before can come back.
    db.prepare(
      `INSERT INTO ${META_TABLE} (table_name, schema_version, epoch)
       VALUES (?, ?, (SELECT coalesce(max(epoch), 0) + 1 FROM ${META_TABLE} WHERE table_name = ? COLLATE NOCASE))
       ON CONFLICT (table_name) DO UPDATE SET schema_version = excluded.schema_version, epoch = excluded.epoch`,
    ).run(table, SCHEMA_VERSION, table);
  }).immediate();
}
