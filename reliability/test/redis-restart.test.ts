import { type RedisServer, startRedis } from "@kvsession/test-helpers";
import { afterAll, it } from "vitest";
import { type AppProcess, startApp } from "../src/app-process.js";
import { storeOutage } from "../src/outage.js";
import { expectOutageSurvived, outageFigures } from "../src/outage-checks.js";
import { record } from "../src/record.js";

// How long a request may wait for an unreachable Redis (connect and command), and the slack on top.
const TIMEOUT_MS = 500;
const SLACK_MS = 2500;

let redis: RedisServer | undefined;
let app: AppProcess | undefined;
afterAll(async () => {
  await app?.kill("SIGKILL");
  await redis?.stop();
});

it("Redis killed (SIGKILL) and restarted under HTTP load: quick 503s, no crash, service resumes, no session lost", async () => {
  // Persistence on, fsync on every write: what was acknowledged before the kill must come back.
  redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
  app = await startApp({ REDIS_URL: redis.url, STORE_TIMEOUT_MS: String(TIMEOUT_MS) });
  const server = redis;
  const run = await storeOutage(app, { down: () => server.kill(), up: () => server.start() });

  record(
    "redis-restart",
    outageFigures(
      "express-pin on Redis (AOF, appendfsync always); redis-server SIGKILLed under 8-connection HTTP load, restarted on the same port and directory",
      TIMEOUT_MS,
      run,
      app,
    ),
  );
  expectOutageSurvived(run, app, TIMEOUT_MS, SLACK_MS);
});
