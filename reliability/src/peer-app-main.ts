import { createServer } from "node:http";
import { RedisStore } from "connect-redis";
import express from "express";
import session from "express-session";
import { Cluster, Redis } from "ioredis";
import { SECRET } from "./session-app.js";

/**
 * The peer of the failover scenarios (`cluster-app.ts` starts it as a child process): the same
 * `GET /data` and `POST /set/:key/:value` routes as `session-app.ts`, on express-session +
 * connect-redis over an ioredis client as configured by default. Environment: `CLUSTER_NODES`
 * (comma-separated redis:// URLs, the seed nodes of an ioredis Cluster) or `SENTINELS`
 * (comma-separated host:port) with `SENTINEL_NAME`; `PORT`, `STORE_PREFIX`.
 */
const env = process.env;
const hostPort = (s: string) => {
  const u = new URL(s.includes("://") ? s : `redis://${s}`);
  return { host: u.hostname, port: Number(u.port) };
};
const client = env.SENTINELS
  ? new Redis({ sentinels: env.SENTINELS.split(",").map(hostPort), name: env.SENTINEL_NAME ?? "kvmaster" })
  : new Cluster((env.CLUSTER_NODES ?? "").split(",").map(hostPort));
// Without a listener, a lost connection's 'error' event would end the process.
client.on("error", () => {});

const app = express();
app.disable("x-powered-by");
app.use(
  session({
    name: "sid",
    secret: SECRET,
    store: new RedisStore({ client, prefix: env.STORE_PREFIX ?? "peer:" }),
    resave: false,
    saveUninitialized: false,
  }),
);
type Data = { n?: number };
app.post("/set/:key/:value", (req, res, next) => {
  (req.session as unknown as Record<string, number>)[req.params.key] = Number(req.params.value);
  // express-session saves after the answer is sent and answers 200 even when that save fails; an
  // app that acknowledges a write saves first, so a 200 here means the store confirmed it.
  req.session.save((err) => (err ? next(err) : res.json({ ok: true })));
});
app.get("/data", (req, res) => {
  const n = (req.session as unknown as Data).n;
  res.json({ exists: n !== undefined, data: n === undefined ? {} : { n } });
});
app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  const e = err as { code?: string };
  res
    .status(503)
    .type("text/plain")
    .send(e.code ?? (err instanceof Error ? err.message.slice(0, 60) : "error"));
});
createServer(app).listen(Number(env.PORT), "127.0.0.1", () => console.log(`peer app on ${env.PORT}`));
