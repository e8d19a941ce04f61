import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { requireService } from "@kvsession/kv-test-suite";

const run = promisify(execFile);

/**
 * One query through Debian's `sqlite3` command (package sqlite3), its output trimmed. A separate
 * process on purpose: it opens the file the way any other tool would, beside (or after) the app.
 *
 * @example
 * expect(await sqlite(path, "PRAGMA integrity_check")).toBe("ok");
 */
export async function sqlite(path: string, query: string): Promise<string> {
  return (await run("sqlite3", [path, query])).stdout.trim();
}

/** Whether the `sqlite3` command is there (skipped on a laptop without it, a failure when CI=true). */
export const hasSqliteCli = () =>
  requireService("the sqlite3 command (apt-get install sqlite3)", () => run("sqlite3", ["-version"]));
