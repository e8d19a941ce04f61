import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import fastifyCookie from "@fastify/cookie";
import fastifySession from "@fastify/session";
import { createMemoryStore } from "@kvsession/kv";
import { requireService } from "@kvsession/kv-test-suite";
import { RedisStore } from "connect-redis";
import express from "express";
import expressSession from "express-session";
import Fastify from "fastify";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessions, type LegacyOptions, type LegacyStore } from "../src/index.js";
import { createJar, SECRET } from "./helpers.js";

const OLD_SECRET = "the-secret-express-session-was-given";
const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const ping = async () => {
  const c = createClient({ url, socket: { reconnectStrategy: false } });
  await c.connect();
  await c.ping();
  await c.close();
};

/** The Cookie header a browser would send back, from a response's Set-Cookie lines. */
function cookieHeaderFrom(res: Response): string {
  return res.headers
    .getSetCookie()
    .map((line) => line.split(";")[0]!)
    .join("; ");
}

if (await requireService(`Redis at ${url}`, ping)) {
  const client = createClient({ url });
  const prefix = `legacy-test:${randomBytes(4).toString("hex")}:`;
  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*` }))
      if (keys.length) await client.del(keys);
    await client.close();
  });

  /** Logs "ada" in with the old library and returns the browser's old cookie. */
  async function oldLogin(app: {
    listen(port: number, host: string, cb: () => void): { close(): void; address(): unknown };
  }) {
    return new Promise<string>((resolve, reject) => {
      const server = app.listen(0, "127.0.0.1", async () => {
        try {
          const { port } = server.address() as AddressInfo;
          const res = await fetch(`http://127.0.0.1:${port}/login`);
          expect(await res.text()).toBe("ok");
          resolve(cookieHeaderFrom(res));
        } catch (err) {
          reject(err);
        } finally {
          server.close();
        }
      });
    });
  }

  function ours(legacy: Omit<LegacyOptions, "until" | "map"> & { until?: Date }) {
    return createSessions({
      store: createMemoryStore(),
      secrets: [SECRET],
      legacy: {
        until: new Date(Date.now() + 86_400_000),
        map: (old) => ({ data: { visits: old.visits as number }, userId: old.userId as string }),
        ...legacy,
      },
    });
  }

  describe("switching from express-session + connect-redis", () => {
    const store = new RedisStore({ client, prefix });

    async function expressCookie(): Promise<string> {
      const app = express();
      app.use(expressSession({ secret: OLD_SECRET, resave: false, saveUninitialized: false, store }));
      app.get("/login", (req, res) => {
        Object.assign(req.session, { userId: "ada", visits: 3 });
        res.send("ok");
      });
      return oldLogin(app);
    }

    it("upgrades the old session once: same data and user, new cookie, old entry and cookie gone", async () => {
      const oldCookie = await expressCookie();
      expect(oldCookie).toMatch(/^connect\.sid=s%3A/);
      const sid = decodeURIComponent(oldCookie.split("=")[1]!).slice(2).split(".")[0]!;
      expect(await client.exists(`${prefix}${sid}`)).toBe(1);
      const sessions = ours({
        cookieName: "connect.sid",
        secrets: [OLD_SECRET],
        store: store as LegacyStore,
      });

      const s = sessions.open({ cookieHeader: oldCookie, secure: true });
      expect(await s.userId()).toBe("ada");
      expect(await s.get("visits")).toBe(3);
      const r = await s.commit();
      expect(r.setCookie.some((c) => c.startsWith("__Host-sid="))).toBe(true);
      expect(r.setCookie.some((c) => c.startsWith("connect.sid=;") && c.includes("Max-Age=0"))).toBe(true);
      expect(await client.exists(`${prefix}${sid}`)).toBe(0);

      const jar = createJar();
      jar.apply(r);
      expect(await sessions.open({ cookieHeader: jar.header(), secure: true }).userId()).toBe("ada");
      expect((await sessions.listUserSessions("ada")).length).toBe(1);
      // The old cookie, replayed, opens nothing now.
      expect(await sessions.open({ cookieHeader: oldCookie, secure: true }).userId()).toBeUndefined();
    });

    it("ignores a tampered old cookie, and after the end date only clears it", async () => {
      const oldCookie = await expressCookie();
      const tampered = oldCookie.replace(/.$/, (c) => (c === "A" ? "B" : "A"));
      const sessions = ours({
        cookieName: "connect.sid",
        secrets: [OLD_SECRET],
        store: store as LegacyStore,
      });
      expect(await sessions.open({ cookieHeader: tampered, secure: true }).userId()).toBeUndefined();
      const wrongSecret = ours({
        cookieName: "connect.sid",
        secrets: ["another-secret"],
        store: store as LegacyStore,
      });
      expect(await wrongSecret.open({ cookieHeader: oldCookie, secure: true }).userId()).toBeUndefined();
      const ended = ours({
        cookieName: "connect.sid",
        secrets: [OLD_SECRET],
        store: store as LegacyStore,
        until: new Date(Date.now() - 1),
      });
      const s = ended.open({ cookieHeader: oldCookie, secure: true });
      expect(await s.userId()).toBeUndefined();
      const r = await s.commit();
      expect(r.setCookie).toEqual([expect.stringMatching(/^connect\.sid=; .*Max-Age=0/)]);
    });
  });

  describe("switching from @fastify/session + connect-redis", () => {
    it("upgrades the old session once", async () => {
      const store = new RedisStore({ client, prefix });
      const app = Fastify();
      await app.register(fastifyCookie);
      await app.register(fastifySession, {
        secret: OLD_SECRET,
        cookie: { secure: false },
        saveUninitialized: false,
        store: store as never,
      });
      app.get("/login", async (request) => {
        request.session.set("userId" as never, "ada" as never);
        request.session.set("visits" as never, 3 as never);
        return "ok";
      });
      await app.listen({ port: 0, host: "127.0.0.1" });
      const { port } = app.server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/login`);
      expect(await res.text()).toBe("ok");
      const oldCookie = cookieHeaderFrom(res);
      await app.close();
      expect(oldCookie).toMatch(/^sessionId=/);

      const sessions = ours({
        cookieName: "sessionId",
        signedPrefix: "",
        secrets: [OLD_SECRET],
        store: store as LegacyStore,
      });
      const s = sessions.open({ cookieHeader: oldCookie, secure: true });
      expect(await s.userId()).toBe("ada");
      expect(await s.get("visits")).toBe(3);
      const r = await s.commit();
      expect(r.setCookie.some((c) => c.startsWith("sessionId=;"))).toBe(true);
      expect(await sessions.open({ cookieHeader: oldCookie, secure: true }).userId()).toBeUndefined();
    });
  });
}
