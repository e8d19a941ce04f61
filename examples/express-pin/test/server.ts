import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KvStore } from "@kvsession/kv";
import type { Sessions } from "@kvsession/session";
import { type AppOptions, createApp } from "../src/app.js";
import { openStore } from "../src/store.js";

export const SECRET = "test-secret-test-secret-test-secret-0123456789";

export interface Demo {
  base: string;
  store: KvStore;
  sessions: Sessions;
  stop(): Promise<void>;
}

/**
 * The demo as `main.ts` runs it on a loopback port: the default SQLite file store in a temp
 * folder, or the store `env` picks (REDIS_URL…), with `options` passed to createApp.
 */
export async function startDemo(
  options: Partial<Omit<AppOptions, "store" | "secrets">> = {},
  env: Record<string, string> = {},
): Promise<Demo> {
  const dir = mkdtempSync(join(tmpdir(), "express-pin-"));
  const { store } = await openStore({ SQLITE_PATH: join(dir, "sessions.db"), ...env });
  const { app, sessions } = createApp({ store, secrets: [SECRET], ...options });
  const server: Server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    store,
    sessions,
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
