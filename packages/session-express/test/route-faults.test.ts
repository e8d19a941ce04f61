import { get } from "node:http";
import { join } from "node:path";
import { type ChildServer, startChildServer } from "@kvsession/test-helpers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const fixture = join(import.meta.dirname, "fixtures", "faulty-routes-server.ts");
const FAULTS = [
  "/send-twice",
  "/send-twice-untouched",
  "/send-then-status",
  "/json-twice",
  "/bad-write-head",
];

interface Answer {
  status: number;
  body: string;
  sessionCookie: boolean;
}

/**
 * One request on a connection of its own: plain Express destroys the socket of a response whose
 * error reaches its final handler after the headers went out, which must not fail the next request.
 */
function ask(server: ChildServer, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    get(server.url + path, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => {
        const sessionCookie = (res.headers["set-cookie"] ?? []).some((c) => c.startsWith("sid="));
        resolve({ status: res.statusCode ?? 0, body, sessionCookie });
      });
      res.on("error", reject);
    }).on("error", (err) =>
      reject(
        new Error(`${path}: no answer (server alive: ${server.alive()})\n${server.stderr()}`, { cause: err }),
      ),
    );
  });
}

let plain: ChildServer;
let session: ChildServer;
beforeAll(async () => {
  [plain, session] = await Promise.all([
    startChildServer(fixture, ["plain"]),
    startChildServer(fixture, ["session"]),
  ]);
});
afterAll(async () => {
  await Promise.all([plain?.stop(), session?.stop()]);
});

describe("a route's own faults behind the middleware", () => {
  it("are answered as plain Express answers them, and the server keeps serving", async () => {
    for (const path of FAULTS) {
      const without = await ask(plain, path);
      const withSession = await ask(session, path);
      // An error page holds a stack trace, which differs with the middleware's frames in it.
      const shown = (a: Answer) => ({
        path,
        status: a.status,
        body: a.status < 500 ? a.body : "(error page)",
      });
      expect(shown(withSession)).toEqual(shown(without));
      // Each fault is followed by a normal request: the process survived it.
      expect(await ask(session, "/ok")).toMatchObject({ status: 200, body: "ok" });
    }
    expect(session.alive()).toBe(true);
  });

  it("plain Express's answers are the ones the comparison relies on", async () => {
    for (const path of ["/send-twice", "/send-twice-untouched", "/send-then-status"])
      expect({ path, ...(await ask(plain, path)) }).toMatchObject({ path, status: 200, body: "a" });
    expect(await ask(plain, "/json-twice")).toMatchObject({ status: 200, body: '{"first":true}' });
    expect((await ask(plain, "/bad-write-head")).status).toBe(500);
  });

  it("the session's cookie goes out with the response the route sent first", async () => {
    for (const path of ["/send-twice", "/send-then-status", "/json-twice"])
      expect({ path, cookie: (await ask(session, path)).sessionCookie }).toEqual({ path, cookie: true });
  });
});
