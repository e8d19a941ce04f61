import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KvStore } from "@kvsession/kv";
import { createRedisStore } from "@kvsession/kv-redis";
import { cookieJar, freePort, SECRET } from "@kvsession/test-helpers";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import kvSession from "../src/index.js";

// A redis-server of this file's own on a free loopback port, paused with SIGSTOP to make a real outage.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: ChildProcess;
let dir: string;
let store: KvStore;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  const port = await freePort();
  dir = mkdtempSync(join(tmpdir(), "fastify-redis-"));
  redis = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  // A stopped Redis never answers, so any timeout detects the outage; a generous one keeps a slow
  // answer on a busy machine from passing for an outage while Redis runs.
  store = createRedisStore({ url: `redis://127.0.0.1:${port}`, connectWaitMs: 200, commandTimeoutMs: 2_000 });
  for (let i = 0; ; i++) {
    try {
      await store.has("ping");
      break;
    } catch (err) {
      if (i > 100) throw err;
      await sleep(50);
    }
  }
  app = Fastify();
  await app.register(kvSession, { store, secrets: [SECRET] });
  app.get("/count", async (request) => {
    request.session.n = (request.session.n ?? 0) + 1;
    return { n: request.session.n };
  });
  app.get("/plain", async () => ({ ok: true }));
  await app.listen({ port: 0, host: "127.0.0.1" });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (redis?.signalCode === null) redis.kill("SIGCONT");
  await app?.close();
  await store?.close().catch(() => {});
  redis?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("a Redis outage through the Fastify plugin", () => {
  it("answers 503 while Redis is stopped, serves requests without a session, and resumes the same session after", async () => {
    const b = cookieJar();
    expect(await (await b.fetch(`${url}/count`)).json()).toEqual({ n: 1 });
    const cookie = b.header();
    redis.kill("SIGSTOP");
    try {
      const down = await b.fetch(`${url}/count`);
      expect(down.status).toBe(503);
      expect(((await down.json()) as { code: string }).code).toBe("SESSION_STORE");
      // The client keeps its cookie: an outage must not log anyone out.
      expect(down.headers.getSetCookie()).toEqual([]);
      expect(b.header()).toBe(cookie);
      // A request with the cookie loads its session before any route (as @fastify/session does), so
      // it waits for the store too; one without a session cookie does not touch the store.
      const loaded = await b.fetch(`${url}/plain`);
      expect([loaded.status, loaded.headers.get("retry-after")]).toEqual([503, "1"]);
      expect((await fetch(`${url}/plain`)).status).toBe(200);
    } finally {
      redis.kill("SIGCONT");
    }
    // Once Redis answers again, the session is the one from before the outage: nothing was lost or
    // written meanwhile. (Asking the store itself first keeps a slow restart from timing out a
    // write whose outcome would then be unknown.)
    for (let i = 0; ; i++) {
      try {
        await store.has("ping");
        break;
      } catch (err) {
        if (i > 100) throw err;
        await sleep(50);
      }
    }
    const res = await b.fetch(`${url}/count`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ n: 2 });
  });
});
