import { join } from "node:path";
import { type ChildServer, childServersForFile } from "@kvsession/test-helpers";
import { describe, expect, it } from "vitest";

const fixture = join(import.meta.dirname, "fixtures", "faulty-routes-server.ts");
const FAULTS = ["/bad-header", "/send-without-return", "/send-then-throw", "/send-twice"];

interface Answer {
  status: number;
  body: string;
  sessionCookie: boolean;
}

async function ask(server: ChildServer, path: string): Promise<Answer> {
  let res: Response;
  try {
    res = await fetch(server.url + path);
  } catch (err) {
    throw new Error(`${path}: no answer (server alive: ${server.alive()})\n${server.stderr()}`, {
      cause: err,
    });
  }
  const sessionCookie = res.headers.getSetCookie().some((c) => c.startsWith("sid="));
  return { status: res.status, body: await res.text(), sessionCookie };
}

const servers = childServersForFile(fixture, { plain: ["plain"], session: ["session"] });

describe("a route's own faults after it used the session", () => {
  it("are answered as plain Fastify answers them, and the server keeps serving", async () => {
    for (const path of FAULTS) {
      const without = await ask(servers.plain, path);
      const withSession = await ask(servers.session, path);
      expect({ path, status: withSession.status, body: withSession.body }).toEqual({
        path,
        status: without.status,
        body: without.body,
      });
      // Each fault is followed by a normal request: the process survived it.
      expect(await ask(servers.session, "/ok")).toMatchObject({ status: 200, body: '{"ok":true}' });
    }
    expect(servers.session.alive()).toBe(true);
  });

  it("plain Fastify's answers are the ones the comparison relies on", async () => {
    expect((await ask(servers.plain, "/bad-header")).status).toBe(500);
    expect(await ask(servers.plain, "/send-without-return")).toMatchObject({
      status: 200,
      body: '{"sent":"once"}',
    });
    expect(await ask(servers.plain, "/send-then-throw")).toMatchObject({
      status: 200,
      body: '{"sent":"before the throw"}',
    });
    expect(await ask(servers.plain, "/send-twice")).toMatchObject({ status: 200, body: '{"sent":"first"}' });
  });

  it("the session's cookie goes out with the response the route sent first", async () => {
    for (const path of ["/send-without-return", "/send-then-throw", "/send-twice"])
      expect({ path, cookie: (await ask(servers.session, path)).sessionCookie }).toEqual({
        path,
        cookie: true,
      });
  });
});
