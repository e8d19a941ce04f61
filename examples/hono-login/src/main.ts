import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { serve } from "@hono/node-server";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { createApp } from "./app.js";

const port = Number(process.env.PORT ?? 3001);
const host = process.env.HOST ?? "127.0.0.1";
const file = resolve(process.env.SQLITE_PATH ?? "data/hono-login.sqlite");
mkdirSync(dirname(file), { recursive: true });

let secret = process.env.SESSION_SECRET;
if (secret === undefined) {
  // Fine for a demo; in production a fixed secret keeps sessions valid across restarts.
  secret = randomBytes(48).toString("base64url");
  console.warn("SESSION_SECRET is not set: using a random one, so a restart logs everyone out.");
}

const store = createSqliteStore({ path: file });
const { app } = createApp({ store, secrets: [secret], trustProxy: process.env.TRUST_PROXY === "1" });
const server = serve({ fetch: app.fetch, port, hostname: host }, (info) => {
  console.log(`hono-login on http://${host}:${info.port} (sessions in ${file})`);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.close(() => void store.close().then(() => process.exit(0)));
  });
}
