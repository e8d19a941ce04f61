import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { createMemoryStore } from "@kvsession/kv";
import { createSessions, SessionConfigError, type Sessions } from "@kvsession/session";
import {
  cleanupsAfterEach,
  cookieJar,
  rmwProbe,
  rmwStores,
  SECRET,
  sameCookieRace,
  storeWithFailingWrites,
} from "@kvsession/test-helpers";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { type HonoSessionOptions, type SessionVariables, session } from "../src/index.js";

// N read-modify-write requests at once on one session cookie, through a real @hono/node-server:
// each reads n, yields to the event loop and the store, and writes n + 1. A serialised middleware
// loses none; the unserialised control, held at a barrier between read and write, loses all but one.

type Data = { n: number; held: boolean };
type Env = { Variables: SessionVariables<Data> };
const N = 8;
const cleanups = cleanupsAfterEach();

const pause = () => new Promise<void>((r) => setTimeout(r, 1));

async function listen(app: Hono<Env>): Promise<string> {
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * The routes under /serial/ go through a serialised session middleware registered before the
 * app-wide one (which then leaves those requests to it); `appWide` are the app-wide one's options.
 */
function makeApp(appWide: HonoSessionOptions<Data>, serialGroup?: HonoSessionOptions<Data>) {
  const app = new Hono<Env>();
  if (serialGroup) app.use("/serial/*", session<Data>(serialGroup));
  app.use(session<Data>(appWide));
  const probe = rmwProbe(N);
  const increment =
    (wait: () => Promise<void>) =>
    async (c: { get(k: "session"): SessionVariables<Data>["session"]; json(v: unknown): Response }) => {
      const s = c.get("session");
      const n = (await s.get("n")) ?? 0;
      return probe.between(wait, () => {
        s.set("n", n + 1);
        return c.json({ n: n + 1 });
      });
    };
  app.post("/start", (c) => {
    c.get("session").set("n", 0);
    return c.json({ ok: true });
  });
  app.post("/serial/rmw", increment(pause));
  app.post("/rmw", increment(probe.barrier));
  app.post("/app-wide", increment(pause));
  app.post("/serial/hold", async (c) => {
    await c.get("session").get("n");
    probe.hold.entered();
    await probe.hold.opened;
    c.get("session").set("held", true);
    return c.json({ ok: true });
  });
  app.get("/peek", async (c) =>
    c.json({
      n: (await c.get("session").get("n")) ?? null,
      held: (await c.get("session").get("held")) ?? null,
    }),
  );
  return { app, most: probe.most, hold: probe.hold };
}

const race = (url: string, path: string) => sameCookieRace(url, path, N);

describe.each(rmwStores(cleanups, "hono-serialize"))(
  "serialised mode on %s through a real @hono/node-server",
  (_name, makeStore) => {
    it("a route group's middleware with serialize: true loses no increment of N concurrent requests on one cookie", async () => {
      const sessions = createSessions<Data>({ store: makeStore(), secrets: [SECRET] });
      const t = makeApp({ sessions }, { sessions, serialize: true });
      const url = await listen(t.app);
      const { statuses, seen, final } = await race(url, "/serial/rmw");
      expect(statuses).toEqual(Array(N).fill(200));
      expect(seen).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      expect(final).toBe(N);
      expect(t.most()).toBe(1);
    });

    it("the same requests through the app-wide middleware, not serialised, lose all but one (the control)", async () => {
      const sessions = createSessions<Data>({ store: makeStore(), secrets: [SECRET] });
      const t = makeApp({ sessions }, { sessions, serialize: true });
      const url = await listen(t.app);
      const { statuses, final } = await race(url, "/rmw");
      expect(statuses).toEqual(Array(N).fill(200));
      expect(t.most()).toBe(N);
      expect(final).toBe(1);
    });

    it("serialize on a middleware built from a store serialises every request through it", async () => {
      const t = makeApp({ store: makeStore(), secrets: [SECRET], serialize: true });
      const url = await listen(t.app);
      const { final } = await race(url, "/app-wide");
      expect([final, t.most()]).toEqual([N, 1]);
    });
  },
);

describe("serialised mode's limits through Hono", () => {
  it("a request that waits too long answers 503 with Retry-After and a generic body, and holds nothing", async () => {
    const sessions = createSessions<Data>({
      store: createMemoryStore(),
      secrets: [SECRET],
      serialize: { waitMs: 150, leaseMs: 2_000 },
    });
    const t = makeApp({ sessions }, { sessions, serialize: true });
    const url = await listen(t.app);
    const b = cookieJar();
    await b.fetch(`${url}/start`, { method: "POST" });
    const holder = b.fetch(`${url}/serial/hold`, { method: "POST" });
    await t.hold.inside;
    const busy = await b.fetch(`${url}/serial/rmw`, { method: "POST" });
    expect([busy.status, busy.headers.get("retry-after"), await busy.text()]).toEqual([
      503,
      "2",
      "Session busy",
    ]);
    expect(busy.headers.getSetCookie()).toEqual([]);
    t.hold.open();
    expect((await holder).status).toBe(200);
    expect(await (await b.fetch(`${url}/peek`)).json()).toEqual({ n: 0, held: true });
    expect(await (await b.fetch(`${url}/serial/rmw`, { method: "POST" })).json()).toEqual({ n: 1 });
  });

  it("a middleware instance's own lease timings replace the core's", async () => {
    // The core would wait far longer than a test may take: only the middleware's own waitMs can answer before the test times out.
    const sessions = createSessions<Data>({
      store: createMemoryStore(),
      secrets: [SECRET],
      serialize: { waitMs: 60_000 },
    });
    const t = makeApp({ sessions }, { sessions, serialize: { waitMs: 1 } });
    const url = await listen(t.app);
    const b = cookieJar();
    await b.fetch(`${url}/start`, { method: "POST" });
    const holder = b.fetch(`${url}/serial/hold`, { method: "POST" });
    await t.hold.inside;
    expect((await b.fetch(`${url}/serial/rmw`, { method: "POST" })).status).toBe(503);
    t.hold.open();
    expect((await holder).status).toBe(200);
  });

  it.each([
    ["a negative waitMs", { waitMs: -1 }, /options\.serialize: serialize\.waitMs must be a positive integer/],
    ["an unknown timing", { wait: 1 }, /unknown lease timing "wait"/],
    ["a string", "yes", /takes true, false or lease timings/],
  ])("lease timings with %s fail when the middleware is made", (_, serialize, message) => {
    const sessions = createSessions<Data>({ store: createMemoryStore(), secrets: [SECRET] });
    expect(() => session<Data>({ sessions, serialize: serialize as never })).toThrow(SessionConfigError);
    expect(() => session<Data>({ sessions, serialize: serialize as never })).toThrow(message);
  });

  it("a serialised middleware mounted after one that already opened the session refuses clearly", async () => {
    const sessions = createSessions<Data>({ store: createMemoryStore(), secrets: [SECRET] });
    const app = new Hono<Env>();
    app.use(session<Data>({ sessions }));
    app.use("/serial/*", session<Data>({ sessions, serialize: true }));
    app.post("/serial/rmw", (c) => c.json({ ok: true }));
    const errors: Error[] = [];
    app.onError((err, c) => {
      errors.push(err);
      return c.text("error", 500);
    });
    const res = await app.request("/serial/rmw", { method: "POST" });
    expect(res.status).toBe(500);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/register the serialised one .* before/),
    ]);
  });

  it("a serialised request whose save() fails answers 503, and its hold ends", async () => {
    const { store, failing } = storeWithFailingWrites();
    // A short lease: what is left of the failed holder's lease once its hold in this process ended.
    const sessions: Sessions<Data> = createSessions<Data>({
      store,
      secrets: [SECRET],
      serialize: { leaseMs: 300 },
    });
    const t = makeApp({ sessions }, { sessions, serialize: true });
    t.app.post("/serial/save-fails", async (c) => {
      const s = c.get("session");
      s.set("n", 100);
      await s.get("n");
      failing.on = true;
      await s.save();
      return c.json({ saved: true });
    });
    const url = await listen(t.app);
    const b = cookieJar();
    await b.fetch(`${url}/start`, { method: "POST" });
    const failed = await b.fetch(`${url}/serial/save-fails`, { method: "POST" });
    expect([failed.status, failed.headers.get("retry-after")]).toEqual([503, "1"]);
    failing.on = false;
    // Its change was not written afterwards either.
    expect(await (await b.fetch(`${url}/serial/rmw`, { method: "POST" })).json()).toEqual({ n: 1 });
  });
});
