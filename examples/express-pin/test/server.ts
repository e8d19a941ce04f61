import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KvStore } from "@kvsession/kv";
import { createApp } from "../src/app.js";
import { openStore } from "../src/store.js";

export const SECRET = "test-secret-test-secret-test-secret-0123456789";

/** The demo as `main.ts` runs it — default SQLite file store — on a loopback port, in a temp folder. */
export async function startDemo(): Promise<{ base: string; store: KvStore; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "express-pin-"));
  const { store } = await openStore({ SQLITE_PATH: join(dir, "sessions.db") });
  const { app } = createApp({ store, secrets: [SECRET] });
  const server: Server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    store,
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
