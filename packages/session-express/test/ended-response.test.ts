import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { kvSession } from "../src/index.js";
import { client, closeServers, SECRET, serve } from "./helpers.js";

afterEach(closeServers);

type Session = Record<string, unknown>;

/**
 * What the route does after ending its response, recorded: the call the middleware refuses (a
 * second send, while the response waits for the commit), and calls made once the response has
 * really gone out, as Express's final handler makes when it answers that refusal late.
 */
function lateCalls() {
  const seen: { refused?: string; afterFinish?: string } = {};
  const route = (req: IncomingMessage & { session?: unknown }, res: ServerResponse) => {
    (req.session as Session).x = 1;
    res.setHeader("content-type", "text/plain");
    res.end("first");
    try {
      res.setHeader("content-type", "text/html");
      seen.refused = "not refused";
    } catch (err) {
      seen.refused = (err as { code?: string }).code;
    }
    res.once("finish", () => {
      try {
        res.statusCode = 500;
        res.setHeader("content-type", "text/html");
        res.end("late");
        seen.afterFinish = "dropped";
      } catch (err) {
        seen.afterFinish = `threw ${(err as { code?: string }).code}`;
      }
    });
  };
  return { seen, route };
}

async function listenPlain(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe("a response the app ended is final while it waits for the commit", () => {
  it("under Express: a later header change throws ERR_HTTP_HEADERS_SENT, and what follows is dropped", async () => {
    const { seen, route } = lateCalls();
    const app = express();
    app.use(kvSession({ store: createMemoryStore(), secrets: [SECRET] }));
    app.get("/", route as unknown as express.RequestHandler);
    const r = await (await serve(app)).client().request("/");
    expect([r.status, r.text, r.headers.get("content-type"), r.setCookie.length]).toEqual([
      200,
      "first",
      "text/plain",
      1,
    ]);
    expect(seen).toEqual({ refused: "ERR_HTTP_HEADERS_SENT", afterFinish: "dropped" });
  });

  it("on a plain node:http server (hooks on the response itself): the same", async () => {
    const { seen, route } = lateCalls();
    const mw = kvSession({ store: createMemoryStore(), secrets: [SECRET] });
    const server = await listenPlain((req, res) => mw(req, res, () => route(req, res)));
    try {
      const r = await client(server.base).request("/");
      expect([r.status, r.text, r.headers.get("content-type"), r.setCookie.length]).toEqual([
        200,
        "first",
        "text/plain",
        1,
      ]);
      expect(seen).toEqual({ refused: "ERR_HTTP_HEADERS_SENT", afterFinish: "dropped" });
    } finally {
      server.close();
    }
  });

  it("the connection survives a second send whose error reaches Express's final handler after the commit", async () => {
    // The session is untouched, so the commit settles before Express's final handler runs for the
    // refused second send: that handler must not find the headers sent and cut the connection.
    const app = express();
    app.use(kvSession({ store: createMemoryStore(), secrets: [SECRET] }));
    const sockets: unknown[] = [];
    app.get("/ok", (req, res) => {
      sockets.push(req.socket);
      res.send("ok");
    });
    // Last in the stack: Express then runs its final handler a tick later (setImmediate).
    app.get("/twice", (req, res) => {
      sockets.push(req.socket);
      res.send("a");
      res.send("bb");
    });
    const { base } = await serve(app);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        request(base + path, { agent }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => {
            body += d.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        })
          .on("error", reject)
          .end();
      });
    try {
      expect(await get("/twice")).toEqual({ status: 200, body: "a" });
      expect(await get("/ok")).toEqual({ status: 200, body: "ok" });
      expect(sockets[1]).toBe(sockets[0]);
    } finally {
      agent.destroy();
    }
  });

  it("a bare res.end() after the end does nothing and is not refused, as in Node", async () => {
    const app = express();
    app.use(kvSession({ store: createMemoryStore(), secrets: [SECRET] }));
    app.get("/", (req, res) => {
      (req as unknown as { session: Session }).session.x = 1;
      res.send("once");
      res.end();
      res.setHeader("x-after", "1");
    });
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).send(`error ${err.message}`);
    });
    const r = await (await serve(app)).client().request("/");
    // The header change after the bare end is the call refused: the first response is untouched.
    expect([r.status, r.text, r.headers.get("x-after")]).toEqual([200, "once", null]);
  });

  it("when the commit then fails, the client gets a 503 with Retry-After (Express's error handling already ran)", async () => {
    const store: KvStore = createMemoryStore();
    await store.close();
    const handled: string[] = [];
    const app = express();
    app.use(kvSession({ store, secrets: [SECRET] }));
    app.get("/", (req, res) => {
      (req as unknown as { session: Session }).session.x = 1;
      res.send("a");
      res.send("bb");
    });
    app.use((err: Error & { code?: string }, _req: express.Request, res: express.Response, _n: unknown) => {
      handled.push(err.code ?? err.name);
      res.status(500).send("error page");
    });
    const r = await (await serve(app)).client().request("/");
    expect([
      r.status,
      r.text,
      r.headers.get("cache-control"),
      r.headers.get("retry-after"),
      r.setCookie,
    ]).toEqual([503, "Session store unavailable", "no-store", "1", []]);
    expect(handled).toEqual(["ERR_HTTP_HEADERS_SENT"]);
  });
});
