import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { createMemoryStore } from "@kvsession/kv";
import { createSessions } from "@kvsession/session";
import { closedPortStore, freePort, SECRET } from "@kvsession/test-helpers";
import { Hono } from "hono";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type SessionVariables, session } from "../src/index.js";

let port: number;
beforeAll(async () => {
  port = await freePort();
});

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** A signed session cookie for SECRET, made by a core on a store of its own: the app can only fail to load it. */
async function validCookie(): Promise<string> {
  const s = createSessions({ store: createMemoryStore(), secrets: [SECRET] }).open({ secure: false });
  s.set("n", 1);
  return (await s.commit()).setCookie[0]!.split(";")[0]!;
}

/** An app on the unreachable store, served by a real @hono/node-server. */
async function listen(setup?: (app: Hono<{ Variables: SessionVariables }>) => void): Promise<string> {
  const app = new Hono<{ Variables: SessionVariables }>();
  app.use(session({ store: closedPortStore(port), secrets: [SECRET] }));
  app.get("/read", async (c) => c.text(String(await c.get("session").get("n"))));
  app.post("/write", (c) => {
    c.get("session").set("n", 1);
    return c.text("saved");
  });
  setup?.(app);
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function expectNothingLeaked(body: string): void {
  expect(body).not.toContain(String(port));
  expect(body).not.toContain("ECONNREFUSED");
  expect(body).not.toMatch(/\bat\s.*:\d+:\d+/);
}

describe("an unreachable store through Hono", () => {
  it("Hono's default error handler: a failed load and a failed commit answer a generic 503 with Retry-After", async () => {
    const url = await listen();
    for (const res of [
      await fetch(`${url}/read`, { headers: { cookie: await validCookie() } }),
      await fetch(`${url}/write`, { method: "POST" }),
    ]) {
      const body = await res.text();
      expect([res.status, body, res.headers.get("retry-after")]).toEqual([
        503,
        "Session store unavailable",
        "1",
      ]);
      expectNothingLeaked(body);
    }
  });

  it("an app's onError that shows the error's message shows nothing of the store; the cause keeps it", async () => {
    const seen: Error[] = [];
    const url = await listen((app) =>
      app.onError((err, c) => {
        seen.push(err);
        return c.text(err.message, 503);
      }),
    );
    const read = await fetch(`${url}/read`, { headers: { cookie: await validCookie() } });
    const write = await fetch(`${url}/write`, { method: "POST" });
    for (const res of [read, write]) {
      const body = await res.text();
      expect(res.status).toBe(503);
      // The core's own message names the operation only.
      expect(body).toMatch(/^session store unavailable \(\w+\); see the error's cause$/);
      expectNothingLeaked(body);
    }
    expect(seen.map((e) => [e.name, (e.cause as Error).message])).toEqual([
      ["SessionStoreError", expect.stringContaining(`127.0.0.1:${port}`)],
      ["SessionStoreError", expect.stringContaining(`127.0.0.1:${port}`)],
    ]);
  });
});
