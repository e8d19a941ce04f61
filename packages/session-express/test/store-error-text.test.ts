import { createMemoryStore } from "@kvsession/kv";
import { createSessions } from "@kvsession/session";
import { closedPortStore, freePort } from "@kvsession/test-helpers";
import express from "express";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { kvSession } from "../src/index.js";
import { closeServers, SECRET, serve } from "./helpers.js";

afterEach(closeServers);

let port: number;
beforeAll(async () => {
  port = await freePort();
});

type Req = express.Request & { session: Record<string, unknown> };

/** A signed session cookie for SECRET, made by a core on a store of its own: the app can only fail to load it. */
async function validCookie(): Promise<string> {
  const s = createSessions({ store: createMemoryStore(), secrets: [SECRET] }).open({ secure: false });
  s.set("n", 1);
  return (await s.commit()).setCookie[0]!.split(";")[0]!;
}

/** The body must not tell the client where the store is, nor show a stack trace. */
function expectNothingLeaked(body: string): void {
  expect(body).not.toContain(String(port));
  expect(body).not.toContain("ECONNREFUSED");
  expect(body).not.toMatch(/\bat\s.*\(.*:\d+:\d+\)/);
  expect(body).not.toMatch(/&nbsp;at /);
}

/** An app on the unreachable store, without an error handler of its own unless `setup` adds one. */
async function app(setup?: (a: express.Express) => void) {
  const a = express();
  a.use(kvSession({ store: closedPortStore(port), secrets: [SECRET] }));
  a.get("/read", (req, res) => {
    res.send(String((req as Req).session.n));
  });
  a.post("/write", (req, res) => {
    (req as Req).session.n = 1;
    res.send("saved");
  });
  a.post("/write-then-fail", (req) => {
    (req as Req).session.n = 1;
    throw new Error("the route failed");
  });
  setup?.(a);
  return serve(a);
}

describe("an unreachable store through Express's final handler (NODE_ENV is not production)", () => {
  it("a load that fails answers 503 without the store's address or a stack trace", async () => {
    const { base } = await app();
    const res = await fetch(`${base}/read`, { headers: { cookie: await validCookie() } });
    const body = await res.text();
    expect(res.status).toBe(503);
    expect(body).toContain("Session store unavailable");
    expectNothingLeaked(body);
  });

  it("a commit that fails answers 503 without the store's address or a stack trace", async () => {
    const { base } = await app();
    const res = await fetch(`${base}/write`, { method: "POST" });
    const body = await res.text();
    expect(res.status).toBe(503);
    expect(body).toContain("Session store unavailable");
    expectNothingLeaked(body);
  });

  it("a commit that fails under the app's own error page (after the router finished) does not leak either", async () => {
    const handled: string[] = [];
    const { base } = await app((a) =>
      a.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        handled.push(err.message);
        res.status(500).send("our error page");
      }),
    );
    const res = await fetch(`${base}/write-then-fail`, { method: "POST" });
    const body = await res.text();
    expect(handled).toEqual(["the route failed"]);
    expect(res.status).toBe(503);
    expectNothingLeaked(body);
  });

  it("the app's error handler gets the generic message, and the refused connection as the cause", async () => {
    const seen: Error[] = [];
    const { base } = await app((a) =>
      a.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        seen.push(err);
        res.status(503).send(err.message);
      }),
    );
    const res = await fetch(`${base}/write`, { method: "POST" });
    expect([res.status, await res.text()]).toEqual([503, "Session store unavailable"]);
    expect(seen[0]!.name).toBe("SessionStoreError");
    expect((seen[0]!.cause as Error).message).toContain(`127.0.0.1:${port}`);
  });
});
