import type Database from "better-sqlite3";
import { META_TABLE } from "./schema.js";

const LIVE = `(expires_at IS NULL OR expires_at > ?)`;

/**
 * Every statement a store runs, prepared once when the store opens.
 *
 * Versions are `epoch.gen`: a write bumps the row's `gen`, a new row starts at
 * gen 0 under the table's current epoch, and every statement that removes rows
 * (delete, clear, sweep) bumps the epoch in the same transaction. A key that is
 * deleted and re-created therefore starts under a larger epoch than any version
 * it had before (no ABA), while a plain write stays one statement.
 */
export function statements(db: Database.Database, table: string): Statements {
  const t = `"${table}"`;
  const epoch = `(SELECT epoch FROM ${META_TABLE} WHERE table_name = '${table}')`;
  const insert = `INSERT INTO ${t} (key, value, expires_at, epoch, gen) VALUES (?, ?, ?, ${epoch}, 0)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, gen = gen + 1`;
  const p = (sql: string) => db.prepare(sql);

  const lists = new Map<string, Database.Statement>();
  /** One statement per shape, so each plan is a plain primary-key range scan. */
  const list = (values: boolean, upper: boolean, cursor: boolean): Database.Statement => {
    const id = `${Number(values)}${Number(upper)}${Number(cursor)}`;
    let s = lists.get(id);
    if (!s) {
      const cols = values ? "key, value, expires_at" : "key, expires_at";
      const where = ["key >= ?", LIVE];
      if (upper) where.push("key < ?");
      if (cursor) where.push("key > ?");
      s = p(`SELECT ${cols} FROM ${t} WHERE ${where.join(" AND ")} ORDER BY key LIMIT ?`);
      lists.set(id, s);
    }
    return s;
  };

  return {
    get: p(`SELECT value, expires_at FROM ${t} WHERE key = ?`),
    has: p(`SELECT 1 FROM ${t} WHERE key = ? AND ${LIVE}`),
    set: p(insert),
    delete: p(`DELETE FROM ${t} WHERE key = ? RETURNING expires_at`),
    bumpEpoch: p(`UPDATE ${META_TABLE} SET epoch = epoch + 1 WHERE table_name = '${table}'`),
    // An expired row counts as absent: the conflict arm overwrites it, a live one is left alone.
    setIfAbsent: p(`${insert} WHERE expires_at IS NOT NULL AND expires_at <= ?`),
    getVersioned: p(`SELECT value, expires_at, epoch, gen FROM ${t} WHERE key = ?`),
    // The written row's version comes back with the write, so a caller's next compare-and-set needs no read.
    createIfAbsent: p(`${insert} WHERE expires_at IS NOT NULL AND expires_at <= ? RETURNING epoch, gen`),
    compareAndSet: p(
      `UPDATE ${t} SET value = ?, expires_at = ?, gen = gen + 1 WHERE key = ? AND epoch = ? AND gen = ? AND ${LIVE} RETURNING gen`,
    ),
    list,
    clearAll: p(`DELETE FROM ${t}`),
    clearRange: p(`DELETE FROM ${t} WHERE key >= ? AND key < ?`),
    clearFrom: p(`DELETE FROM ${t} WHERE key >= ?`),
    // Bounded by LIMIT through the deadline index, so a huge backlog is reclaimed a batch at a time.
    sweep: p(`DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} WHERE expires_at <= ? LIMIT ?)`),
  };
}

type Stmt = Database.Statement;

export interface Statements {
  get: Stmt;
  has: Stmt;
  set: Stmt;
  delete: Stmt;
  bumpEpoch: Stmt;
  setIfAbsent: Stmt;
  getVersioned: Stmt;
  createIfAbsent: Stmt;
  compareAndSet: Stmt;
  list(values: boolean, upper: boolean, cursor: boolean): Stmt;
  clearAll: Stmt;
  clearRange: Stmt;
  clearFrom: Stmt;
  sweep: Stmt;
}
