import type { KvStore } from "@kvsession/kv";
import { hashId, type Sessions } from "@kvsession/session";
import {
  bindUser,
  coreSession,
  type ExpressSession,
  type KvSessionOptions,
  kvSession,
} from "@kvsession/session-express";
import express from "express";

/** 48 characters: above the 32-byte minimum, fixed so a scenario can sign cookies of its own. */
export const SECRET = "reliability-scenarios-secret-0123456789abcdefgh";

type Req = express.Request & { session: ExpressSession };
const session = (req: express.Request) => (req as Req).session;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A small Express app on the kvSession middleware, with one route per session operation the
 * scenarios race against each other:
 * - `POST /set/:key/:value`: `req.session[key] = Number(value)`
 * - `POST /fill/:key/:chars`: a string of that many characters under the key
 * - `POST /slow/:key?ms=`: waits (for `hold(key)` when given, else `ms`), then sets the key to 1 (a slow
 *   request holding a loaded session)
 * - `POST /logout`: `req.session.destroy()`
 * - `POST /login/:user`: `bindUser` (new ID, bound to the user)
 * - `GET /data`: `{ exists, data }` as the core sees them
 * Errors answer `err.status` (503 for store failures and exhausted retries) with the error code as body.
 */
export function sessionApp(
  store: KvStore,
  options: Partial<KvSessionOptions> = {},
  hold?: (key: string) => Promise<void>,
): { app: express.Express; sessions: Sessions } {
  const middleware = kvSession({ store, secrets: [SECRET], ...options });
  const app = express();
  app.disable("x-powered-by");
  app.use(middleware);
  app.post("/set/:key/:value", (req, res) => {
    session(req)[req.params.key] = Number(req.params.value);
    res.json({ ok: true });
  });
  app.post("/fill/:key/:chars", (req, res) => {
    session(req)[req.params.key] = "x".repeat(Number(req.params.chars));
    res.json({ ok: true });
  });
  app.post("/slow/:key", async (req, res) => {
    await (hold ? hold(req.params.key) : sleep(Number(req.query.ms ?? 100)));
    session(req)[req.params.key] = 1;
    res.json({ ok: true });
  });
  app.post("/logout", async (req, res) => {
    await session(req).destroy();
    res.json({ ok: true });
  });
  app.post("/login/:user", async (req: express.Request, res) => {
    await bindUser(req as Req, String(req.params.user));
    res.json({ ok: true });
  });
  app.get("/data", async (req, res) => {
    const core = coreSession(req as Req);
    res.json({ exists: await core.exists(), data: await core.all() });
  });
  app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const e = err as { status?: number; code?: string };
    res
      .status(e.status ?? 500)
      .type("text/plain")
      .send(e.code ?? "error");
  });
  return { app, sessions: middleware.sessions };
}

/** The store key of the session a `sid=<id>.<signature>` cookie pair names. */
export function handleOfCookie(pair: string): string {
  return hashId(pair.slice(pair.indexOf("=") + 1, pair.indexOf("=") + 44));
}
