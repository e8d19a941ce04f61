import { requireService } from "@kvsession/kv-test-suite";
import { type PrivateServer, pgBinDir, startPrivateServer } from "@kvsession/test-helpers";
import { afterAll, it } from "vitest";
import { type AppProcess, startApp } from "../src/app-process.js";
import { storeOutage } from "../src/outage.js";
import { expectOutageSurvived, outageFigures } from "../src/outage-checks.js";
import { record } from "../src/record.js";

// How long a request may wait for an unreachable PostgreSQL (connect and query), and the slack on top.
const TIMEOUT_MS = 1000;
const SLACK_MS = 2500;

let pg: PrivateServer | undefined;
let app: AppProcess | undefined;
afterAll(async () => {
  await app?.kill("SIGKILL");
  await pg?.destroy();
});

const hasPg = await requireService(
  "PostgreSQL server binaries (initdb, pg_ctl)",
  async () => pgBinDir() ?? Promise.reject(new Error("not installed")),
);

it.runIf(hasPg)(
  "PostgreSQL crashed (stop -m immediate) and restarted under HTTP load: quick 503s, no crash, service resumes, no session lost",
  async () => {
    // A private cluster: the shared server on 5432 is never touched.
    pg = await startPrivateServer();
    app = await startApp({ DATABASE_URL: pg.url, STORE_TIMEOUT_MS: String(TIMEOUT_MS) });
    const server = pg;
    const run = await storeOutage(app, { down: () => server.stop("immediate"), up: () => server.start() });

    record(
      "postgres-restart",
      outageFigures(
        "express-pin on PostgreSQL (private cluster); server stopped with -m immediate (no shutdown checkpoint) under 8-connection HTTP load, started again on the same port and data directory",
        TIMEOUT_MS,
        run,
        app,
      ),
    );
    expectOutageSurvived(run, app, TIMEOUT_MS, SLACK_MS);
  },
);
