import { randomBytes } from "node:crypto";
import { createApp } from "./app.js";
import { openStore } from "./store.js";

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";

let secret = process.env.SESSION_SECRET;
if (!secret) {
  secret = randomBytes(48).toString("base64url");
  console.warn(
    "SESSION_SECRET is not set: using a random one for this run, so sessions end when the server restarts.\n" +
      "Set one with: export SESSION_SECRET=$(openssl rand -base64 48)",
  );
}

const idle = process.env.SESSION_IDLE_TIMEOUT_MS;
const { store, description } = await openStore(process.env);
const { app } = createApp({
  store,
  secrets: [secret],
  trustProxy: process.env.TRUST_PROXY,
  idleTimeoutMs: idle ? Number(idle) : undefined,
});
const server = app.listen(port, host, () => {
  console.log(
    `PIN demo on http://${host === "0.0.0.0" ? "localhost" : host}:${port} — sessions in ${description}`,
  );
});

for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    void store.close().then(() => process.exit(0));
  });
