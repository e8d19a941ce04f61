import pg from "pg";

export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A table name no other test run uses, so runs and files never see each other's rows. */
export function uniqueTable(label: string): string {
  return `kvt_${label}_${process.pid}_${Date.now().toString(36)}`;
}

export async function probe(url = DATABASE_URL): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    await client.query("SELECT 1");
  } finally {
    await client.end();
  }
}

/** Drops a test table and forgets it in the meta table. */
export async function dropTable(table: string, url = DATABASE_URL): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS "${table}"`);
    await client.query(`DELETE FROM kvsession_meta WHERE table_name = $1`, [table]).catch(() => {});
  } finally {
    await client.end();
  }
}
