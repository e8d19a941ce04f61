import { get } from "node:http";
import { join } from "node:path";
import { type ChildServer, childServersForFile } from "@kvsession/test-helpers";
import { describe, expect, it } from "vitest";

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

const servers = childServersForFile(fixture, { plain: ["plain"], session: ["session"] });

describe("a route's own faults behind the middleware", () => {
  it("are answered as plain Express answers them, and the server keeps serving", async () => {
    for (const path of FAULTS) {
      const without = await ask(servers.plain, path);
      const withSession = await ask(servers.session, path);
      // An error page holds a stack trace, which differs with the middleware's frames in it.
      const shown = (a: Answer) => ({
        path,
        status: a.status,
        body: a.status < 500 ? a.body : "(error page)",
      });
      expect(shown(withSession)).toEqual(shown(without));
      // Each fault is followed by a normal request: the process survived it.
      expect(await ask(servers.session, "/ok")).toMatchObject({ status: 200, body: "ok" });
    }
    expect(servers.session.alive()).toBe(true);
  });

  it("plain Express's answers are the ones the comparison relies on", async () => {
    for (const path of ["/send-twice", "/send-twice-untouched", "/send-then-status"])
      expect({ path, ...(await ask(servers.plain, path)) }).toMatchObject({ path, status: 200, body: "a" });
    expect(await ask(servers.plain, "/json-twice")).toMatchObject({ status: 200, body: '{"first":true}' });
    expect((await ask(servers.plain, "/bad-write-head")).status).toBe(500);
  });

  it("the session's cookie goes out with the response the route sent first", async () => {
    for (const path of ["/send-twice", "/send-then-status", "/json-twice"])
      expect({ path, cookie: (await ask(servers.session, path)).sessionCookie }).toEqual({
        path,
        cookie: true,
      });
  });
});
