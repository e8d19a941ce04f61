import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { afterAll } from "vitest";
import { describeLifecycle } from "./lifecycle.js";

const dir = mkdtempSync(join(tmpdir(), "kvsession-session-"));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeLifecycle("SQLite (file)", () => createSqliteStore({ path: join(dir, `s${n++}.db`) }));
