import type { AddressInfo } from "node:net";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createRedisStore } from "@kvsession/kv-redis";
import { createSessions } from "@kvsession/session";
import { freePort, SECRET } from "@kvsession/test-helpers";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import kvSession from "../src/index.js";

// A Redis store pointed at a loopback port nothing listens on: every store call fails for real,
// with an error naming the address, which must stay in the server's logs.

/** A signed session cookie for SECRET, made by a core on a store of its own: the app can only fail to load it. */
async function validCookie(): Promise<string> {
  const s = createSessions({ store: createMemoryStore(), secrets: [SECRET] }).open({ secure: false });
  s.set("n", 1);
  return (await s.commit()).setCookie[0]!.split(";")[0]!;
}

let port: number;
let store: KvStore;
let app: FastifyInstance;
let url: string;
const seen: Error[] = [];

beforeAll(async () => {
  port = await freePort();
  store = createRedisStore({ url: `redis://127.0.0.1:${port}`, connectWaitMs: 200, commandTimeoutMs: 300 });
  app = Fastify();
  await app.register(kvSession, { store, secrets: [SECRET] });
  app.addHook("onError", async (_request, _reply, err) => {
    seen.push(err);
  });
  app.get("/count", async (request) => ({ n: request.session.n ?? null }));
  app.post("/blind-set", async (request) => {
    request.session.set("blind", true);
    return { ok: true };
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
  await store?.close();
});

describe("an unreachable store through Fastify's default error handler", () => {
  it.each([
    [
      "a load that fails",
      () => validCookie().then((cookie) => fetch(`${url}/count`, { headers: { cookie } })),
    ],
    ["a commit that fails", () => fetch(`${url}/blind-set`, { method: "POST" })],
  ])("%s answers 503 without the store's address or a stack trace; the cause keeps them", async (_, send) => {
    seen.length = 0;
    const res = await send();
    const body = await res.text();
    expect(res.status).toBe(503);
    expect(JSON.parse(body)).toEqual({
      statusCode: 503,
      code: "SESSION_STORE",
      error: "Service Unavailable",
      message: "Session store unavailable",
    });
    expect(body).not.toContain(String(port));
    expect(body).not.toMatch(/\n\s+at /);
    expect(seen).toHaveLength(1);
    expect(String((seen[0]!.cause as Error).message)).toContain(`127.0.0.1:${port}`);
  });
});
