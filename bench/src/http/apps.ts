// The HTTP servers under test, one per row of the table. Every app serves the same routes:
//   GET /a  read a counter from the session, increment it, answer its value (route A)
//   GET /b  answer "ok" without touching the session (route B)
//   GET /n  answer the counter without changing it (the same-cookie race reads the result back with it)
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fastifyCookie from "@fastify/cookie";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createPostgresStore } from "@kvsession/kv-postgres";
import { createRedisStore } from "@kvsession/kv-redis";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { coreSession, kvSession as expressKvSession } from "@kvsession/session-express";
import connectPgSimple from "connect-pg-simple";
import { RedisStore } from "connect-redis";
import express from "express";
import session from "express-session";
import Fastify, { type FastifyInstance } from "fastify";
import pg from "pg";
import { createClient } from "redis";

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/15";
/** The Redis DB that receives the 1M pre-filled sessions of the scale rows (emptied before and after). */
export const BIG_REDIS_URL = process.env.BENCH_BIG_REDIS_URL ?? "redis://127.0.0.1:6379/14";
/** Namespace of our store in the bench DB; the 1M pre-filled sessions go under it too. */
export const OURS_NAMESPACE = "hb:";
export const DATABASE_URL =
  process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** Our PostgreSQL store's table (dropped by the scripts that use it, before and after). */
export const PG_TABLE = "bench_http_sessions";
/** connect-pg-simple's table, for the peers on PostgreSQL. */
export const PG_PEER_TABLE = "bench_http_peer_sessions";
/** The `application_name` of the servers' PostgreSQL connections, so a script can find their backends. */
export const PG_APP_NAME = "kvsession-bench-http";
const SECRET = "http-benchmark-secret-0123456789-abcdefghijklmnop";
const IDLE_MS = 30 * 60_000;

export interface Variant {
  framework: "express" | "fastify";
  name: string;
  role: "ours" | "limit" | "peer" | "bare";
  /** Session cookie name the server sets. */
  cookie: string;
  /** Measured on route A / route B. */
  routes: Array<"a" | "b">;
  store: "none" | "memory" | "redis" | "sqlite" | "postgres";
  /**
   * Ours only. "serialised": `serialize: true` for the whole app (requests of one session run one at
   * a time); "serialised on A": serialised mode on route A only, the framework's per-route way;
   * "update": route A increments with `session.update`; "lazy": Fastify's `lazy: true` API (the
   * session opened on first use). Default: route A reads, then sets.
   */
  mode?: "serialised" | "serialised on A" | "update" | "lazy";
}

export const VARIANTS: Variant[] = [
  { framework: "express", name: "bare", role: "bare", cookie: "sid", routes: ["a", "b"], store: "none" },
  {
    framework: "express",
    name: "express-session + MemoryStore",
    role: "peer",
    cookie: "connect.sid",
    routes: ["a", "b"],
    store: "memory",
  },
  {
    framework: "express",
    name: "express-session + connect-redis",
    role: "peer",
    cookie: "connect.sid",
    routes: ["a", "b"],
    store: "redis",
  },
  {
    framework: "express",
    name: "ours, memory",
    role: "ours",
    cookie: "sid",
    routes: ["a", "b"],
    store: "memory",
  },
  {
    framework: "express",
    name: "ours, memory, mounted on route A only",
    role: "ours",
    cookie: "sid",
    routes: ["b"],
    store: "memory",
  },
  {
    framework: "express",
    name: "ours, Redis",
    role: "ours",
    cookie: "sid",
    routes: ["a", "b"],
    store: "redis",
  },
  {
    framework: "express",
    name: "ours, Redis, mounted on route A only",
    role: "ours",
    cookie: "sid",
    routes: ["b"],
    store: "redis",
  },
  {
    framework: "express",
    name: "hand-written Redis GET + SET",
    role: "limit",
    cookie: "sid",
    routes: ["a"],
    store: "redis",
  },
  { framework: "fastify", name: "bare", role: "bare", cookie: "sid", routes: ["a", "b"], store: "none" },
  {
    framework: "fastify",
    name: "@fastify/session (memory)",
    role: "peer",
    cookie: "sessionId",
    routes: ["a", "b"],
    store: "memory",
  },
  {
    framework: "fastify",
    name: "ours, memory",
    role: "ours",
    cookie: "sid",
    routes: ["a", "b"],
    store: "memory",
  },
  {
    framework: "fastify",
    name: "ours, memory, lazy",
    role: "ours",
    cookie: "sid",
    routes: ["a", "b"],
    store: "memory",
    mode: "lazy",
  },
  {
    framework: "fastify",
    name: "ours, Redis",
    role: "ours",
    cookie: "sid",
    routes: ["a", "b"],
    store: "redis",
  },
  {
    framework: "fastify",
    name: "hand-written Redis GET + SET",
    role: "limit",
    cookie: "sid",
    routes: ["a"],
    store: "redis",
  },
];

export const variantKey = (v: Variant) => `${v.framework}: ${v.name}`;

/** The bare apps keep the counter in a cookie-keyed Map: the same route shape with no session library. */
function bareCounter() {
  const counts = new Map<string, number>();
  return (cookie: string | undefined): { n: number; setCookie?: string } => {
    const id = /(?:^|;\s*)sid=([^;]+)/.exec(cookie ?? "")?.[1];
    if (id !== undefined && counts.has(id)) {
      const n = counts.get(id)! + 1;
      counts.set(id, n);
      return { n };
    }
    const fresh = randomBytes(32).toString("base64url");
    counts.set(fresh, 1);
    return { n: 1, setCookie: `sid=${fresh}; Path=/; HttpOnly; SameSite=Lax` };
  };
}

/** The limit: exactly one Redis GET and one SET per request, no signing, no library. */
function limitCounter(client: ReturnType<typeof createClient>) {
  return async (cookie: string | undefined): Promise<{ n: number; setCookie?: string }> => {
    const id = /(?:^|;\s*)sid=([A-Za-z0-9_-]{43})/.exec(cookie ?? "")?.[1];
    if (id !== undefined) {
      const raw = await client.get(`lim:${id}`);
      if (raw !== null) {
        const n = (JSON.parse(raw) as { n: number }).n + 1;
        await client.set(`lim:${id}`, JSON.stringify({ n }), { PX: IDLE_MS });
        return { n };
      }
    }
    const fresh = randomBytes(32).toString("base64url");
    await client.set(`lim:${fresh}`, JSON.stringify({ n: 1 }), { PX: IDLE_MS });
    return { n: 1, setCookie: `sid=${fresh}; Path=/; HttpOnly; SameSite=Lax` };
  };
}

async function redisClient() {
  const client = createClient({ url: REDIS_URL, disableOfflineQueue: true });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Our store of the given kind, and what to run after closing it. */
async function ourStore(kind: Variant["store"]): Promise<{ store: KvStore; cleanUp(): void }> {
  const none = () => {};
  switch (kind) {
    case "redis":
      return { store: createRedisStore({ url: REDIS_URL, namespace: OURS_NAMESPACE }), cleanUp: none };
    case "sqlite": {
      const dir = mkdtempSync(join(tmpdir(), "kvsession-bench-http-"));
      const store = createSqliteStore({ path: join(dir, "sessions.db") });
      return { store, cleanUp: () => rmSync(dir, { recursive: true, force: true }) };
    }
    case "postgres": {
      const store = await createPostgresStore(
        { connectionString: DATABASE_URL, max: 10, application_name: PG_APP_NAME },
        { table: PG_TABLE, sweepIntervalMs: false },
      );
      return { store, cleanUp: none };
    }
    default:
      return { store: createMemoryStore(), cleanUp: none };
  }
}

/** Our core options for a variant (the same for every adapter). */
const coreOptions = (store: KvStore, v: Variant) => ({
  store,
  secrets: [SECRET],
  cookie: { secure: false as const },
  ...(v.mode === "serialised" ? { serialize: true } : {}),
});

/**
 * express-session's MemoryStore (undefined), connect-redis or connect-pg-simple; @fastify/session
 * takes the same stores. connect-pg-simple gets a pool like ours on PostgreSQL (10 connections).
 */
async function peerStore(v: Variant, closers: Array<() => Promise<unknown>>, prefix: string) {
  if (v.store === "postgres") {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10, application_name: PG_APP_NAME });
    closers.push(() => pool.end());
    const PgStore = connectPgSimple(session);
    return new PgStore({
      pool,
      tableName: PG_PEER_TABLE,
      createTableIfMissing: true,
      pruneSessionInterval: false,
    });
  }
  if (v.store !== "redis") return undefined;
  const client = await redisClient();
  closers.push(() => client.quit());
  return new RedisStore({ client, prefix });
}

async function expressApp(v: Variant): Promise<{ listen(): Promise<Server>; close(): Promise<void> }> {
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  const closers: Array<() => Promise<unknown>> = [];
  const ok = (_req: express.Request, res: express.Response) => {
    res.send("ok");
  };
  if (v.role === "bare" || v.role === "limit") {
    let count: (
      c: string | undefined,
    ) => { n: number; setCookie?: string } | Promise<{ n: number; setCookie?: string }>;
    if (v.role === "bare") count = bareCounter();
    else {
      const client = await redisClient();
      closers.push(() => client.quit());
      count = limitCounter(client);
    }
    app.get("/a", async (req, res) => {
      const r = await count(req.headers.cookie);
      if (r.setCookie) res.setHeader("set-cookie", r.setCookie);
      res.send(String(r.n));
    });
    app.get("/b", ok);
  } else if (v.role === "peer") {
    const store = await peerStore(v, closers, "hbes:");
    app.use(session({ secret: SECRET, resave: false, saveUninitialized: false, store }));
    app.get("/a", (req, res) => {
      const s = req.session as typeof req.session & { n?: number };
      s.n = (s.n ?? 0) + 1;
      res.send(String(s.n));
    });
    app.get("/b", ok);
    app.get("/n", (req, res) => {
      res.send(String((req.session as typeof req.session & { n?: number }).n ?? 0));
    });
  } else {
    const { store, cleanUp } = await ourStore(v.store);
    closers.push(async () => {
      await store.close();
      cleanUp();
    });
    const mw = expressKvSession(coreOptions(store, v));
    const counter = (req: express.Request, res: express.Response) => {
      if (v.mode === "update") {
        coreSession(req).update("n", (n) => ((n as number | undefined) ?? 0) + 1);
        res.send("ok");
        return;
      }
      const s = req.session as unknown as { n?: number };
      s.n = (s.n ?? 0) + 1;
      res.send(String(s.n));
    };
    const read = (req: express.Request, res: express.Response) => {
      res.send(String((req.session as unknown as { n?: number }).n ?? 0));
    };
    const h = mw as unknown as express.RequestHandler;
    if (v.name.includes("route A only")) {
      // Mounted on the route alone, the way Express mounts a middleware for one route.
      const onA = v.mode === "serialised on A" ? (mw.serialize() as unknown as express.RequestHandler) : h;
      app.get("/a", onA, counter);
      app.get("/b", ok);
      app.get("/n", h, read);
    } else if (v.mode === "serialised on A") {
      app.use(h);
      app.get("/a", mw.serialize() as unknown as express.RequestHandler, counter);
      app.get("/b", ok);
      app.get("/n", read);
    } else {
      app.use(h);
      app.get("/a", counter);
      app.get("/b", ok);
      app.get("/n", read);
    }
  }
  let server: Server | undefined;
  return {
    listen: () =>
      new Promise((resolve) => {
        server = app.listen(0, "127.0.0.1", () => resolve(server!));
      }),
    close: async () => {
      server?.closeAllConnections();
      server?.close();
      for (const c of closers) await c();
    },
  };
}

async function fastifyApp(v: Variant): Promise<{ listen(): Promise<Server>; close(): Promise<void> }> {
  const app: FastifyInstance = Fastify({ logger: false });
  const closers: Array<() => Promise<unknown>> = [];
  if (v.role === "bare" || v.role === "limit") {
    let count: (
      c: string | undefined,
    ) => { n: number; setCookie?: string } | Promise<{ n: number; setCookie?: string }>;
    if (v.role === "bare") count = bareCounter();
    else {
      const client = await redisClient();
      closers.push(() => client.quit());
      count = limitCounter(client);
    }
    app.get("/a", async (req, reply) => {
      const r = await count(req.headers.cookie);
      if (r.setCookie) reply.header("set-cookie", r.setCookie);
      return String(r.n);
    });
  } else if (v.role === "peer") {
    // @fastify/session and our plugin both declare FastifyRequest.session, so their types cannot share
    // one program: load the peer through a non-literal specifier, which keeps its declarations out.
    const peerName: string = "@fastify/session";
    const fastifySession = (await import(peerName)).default as Parameters<typeof app.register>[0];
    await app.register(fastifyCookie);
    const store = await peerStore(v, closers, "hbfs:");
    await app.register(fastifySession, {
      secret: SECRET,
      cookie: { secure: false },
      saveUninitialized: false,
      ...(store ? { store } : {}),
    });
    type PeerSession = { session: { get(k: string): unknown; set(k: string, v: unknown): void } };
    app.get("/a", async (req) => {
      const session = (req as unknown as PeerSession).session;
      const n = ((session.get("n") as number | undefined) ?? 0) + 1;
      session.set("n", n);
      return String(n);
    });
    app.get("/n", async (req) => String((req as unknown as PeerSession).session.get("n") ?? 0));
  } else {
    const { coreSession: fastifyCore, kvSession } = await import("@kvsession/session-fastify");
    const { store, cleanUp } = await ourStore(v.store);
    closers.push(async () => {
      await store.close();
      cleanUp();
    });
    // The lazy API's types come from declaration merging, which this one program cannot do for both APIs.
    if (v.mode === "lazy")
      await app.register(kvSession as never, { ...coreOptions(store, v), lazy: true } as never);
    else await app.register(kvSession, coreOptions(store, v));
    // `get` answers at once in the plugin's default API and with a promise in its lazy one: awaited, it serves both.
    type OurSession = { session: { get(k: string): unknown; set(k: string, v: unknown): void } };
    const routeA = v.mode === "serialised on A" ? { config: { session: { serialize: true } } } : {};
    app.get("/a", routeA as object, async (req) => {
      if (v.mode === "update") {
        fastifyCore(req).update("n", (n) => ((n as number | undefined) ?? 0) + 1);
        return "ok";
      }
      const s = (req as unknown as OurSession).session;
      const n = (((await s.get("n")) as number | undefined) ?? 0) + 1;
      s.set("n", n);
      return String(n);
    });
    app.get("/n", async (req) => String((await (req as unknown as OurSession).session.get("n")) ?? 0));
  }
  app.get("/b", async () => "ok");
  return {
    listen: async () => {
      await app.listen({ port: 0, host: "127.0.0.1" });
      return app.server;
    },
    close: async () => {
      await app.close();
      for (const c of closers) await c();
    },
  };
}

export function buildApp(v: Variant) {
  return v.framework === "express" ? expressApp(v) : fastifyApp(v);
}

const RACE_STORES = [
  ["memory", "memory"],
  ["sqlite", "SQLite"],
  ["redis", "Redis"],
  ["postgres", "PostgreSQL"],
] as const;

/**
 * The servers of the same-cookie race (`race.ts`): each framework's session peer on its memory
 * store, on connect-redis and on connect-pg-simple, and ours on each store in the default mode, serialised mode, and the
 * default mode with route A incrementing through `session.update`. The last rows of each framework,
 * serialised mode on route A only (and on Express the middleware mounted on route A alone, in each
 * mode), serve the no-contention comparison (route A, and route B, which they leave alone).
 */
export const RACE_VARIANTS: Variant[] = (["express", "fastify"] as const).flatMap((framework) => {
  const peer = framework === "express" ? "express-session" : "@fastify/session";
  const peerCookie = framework === "express" ? "connect.sid" : "sessionId";
  const base = { framework, routes: ["a", "b"] as Array<"a" | "b"> };
  return [
    { ...base, name: `${peer} + MemoryStore`, role: "peer", cookie: peerCookie, store: "memory" },
    { ...base, name: `${peer} + connect-redis`, role: "peer", cookie: peerCookie, store: "redis" },
    { ...base, name: `${peer} + connect-pg-simple`, role: "peer", cookie: peerCookie, store: "postgres" },
    ...RACE_STORES.flatMap(([store, label]) =>
      ([undefined, "serialised", "update"] as const).map(
        (mode): Variant => ({
          ...base,
          name: `ours, ${label}${mode === "serialised" ? ", serialised" : mode === "update" ? ", session.update" : ""}`,
          role: "ours",
          cookie: "sid",
          store,
          ...(mode ? { mode } : {}),
        }),
      ),
    ),
    {
      // Route A too: its own cost, and route B measured after as long a run as the default mode's.
      ...base,
      name: "ours, Redis, serialised on route A",
      role: "ours",
      cookie: "sid",
      store: "redis",
      mode: "serialised on A",
    },
    // Express's other per-route way: the middleware mounted on route A alone, in each mode.
    ...(framework === "express"
      ? ([undefined, "serialised on A"] as const).map(
          (mode): Variant => ({
            ...base,
            name: `ours, Redis, ${mode ? "serialised, " : ""}mounted on route A only`,
            // Route B has no session middleware in either mode: nothing to compare there.
            routes: ["a"],
            role: "ours",
            cookie: "sid",
            store: "redis",
            ...(mode ? { mode } : {}),
          }),
        )
      : []),
  ] satisfies Variant[];
});
