import type { AddressInfo } from "node:net";
import { createMemoryStore } from "@kvsession/kv";
import { createSessions } from "@kvsession/session";
import {
  cleanupsAfterEach,
  cookieJar,
  rmwProbe,
  rmwStores,
  SECRET,
  sameCookieRace,
  storeWithFailingWrites,
} from "@kvsession/test-helpers";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { describe, expect, it } from "vitest";
import kvSession, { type KvSessionOptions, type SessionShape } from "../src/index.js";

// One browser (one session cookie) sends N read-modify-write requests at once: read n, yield to
// the event loop and the store, write n + 1. Serialised, none is lost; without it, a barrier that
// holds every request between its read and its write shows the loss the mode exists to prevent.

const N = 8;
const cleanups = cleanupsAfterEach();

const pause = () => new Promise<void>((r) => setTimeout(r, 1));

async function start(options: KvSessionOptions) {
  const app: FastifyInstance = Fastify();
  cleanups.push(() => app.close());
  await app.register(kvSession, options);
  const probe = rmwProbe(N);
  const hold = probe.hold;
  const increment = async (request: { session: { n?: number } }, wait: () => Promise<void>) => {
    const n = request.session.n ?? 0;
    return probe.between(wait, () => {
      request.session.n = n + 1;
      return { n: n + 1 };
    });
  };
  app.post("/start", async (request) => {
    request.session.n = 0;
    return { ok: true };
  });
  app.post("/serial", { config: { session: { serialize: true } } }, (request) => increment(request, pause));
  app.post("/plain", (request) => increment(request, probe.barrier));
  app.post("/opted-out", { config: { session: { serialize: false } } }, (request) =>
    increment(request, probe.barrier),
  );
  app.post("/app-wide", (request) => increment(request, pause));
  app.post("/impatient", { config: { session: { serialize: { waitMs: 1 } } } }, async () => ({}));
  app.post("/hold", { config: { session: { serialize: true } } }, async (request) => {
    hold.entered();
    await hold.opened;
    request.session.held = true;
    return { ok: true };
  });
  app.post("/hijack", { config: { session: { serialize: true } } }, async (request, reply) => {
    request.session.hijacked = true;
    reply.hijack();
    reply.raw.end("raw");
  });
  app.get("/peek", async (request) => ({ n: request.session.n ?? null, held: request.session.held ?? null }));
  await app.listen({ port: 0, host: "127.0.0.1" });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return { url, most: probe.most, hold };
}

const race = (url: string, path: string) => sameCookieRace(url, path, N);

describe.each(rmwStores(cleanups, "fastify-serialize"))(
  "serialised mode on %s through a real Fastify server",
  (_name, makeStore) => {
    it("a route with config.session.serialize loses no increment of N concurrent requests on one cookie", async () => {
      const app = await start({ store: makeStore(), secrets: [SECRET] });
      const { statuses, seen, final } = await race(app.url, "/serial");
      expect(statuses).toEqual(Array(N).fill(200));
      // Each request saw the one before it: 1, 2, …, N.
      expect(seen).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      expect(final).toBe(N);
      expect(app.most()).toBe(1);
    });

    it("the same requests on a route that is not serialised lose all but one (the control)", async () => {
      const app = await start({ store: makeStore(), secrets: [SECRET] });
      const { statuses, final } = await race(app.url, "/plain");
      expect(statuses).toEqual(Array(N).fill(200));
      expect(app.most()).toBe(N);
      expect(final).toBe(1);
    });

    it("the plugin's serialize option serialises every route; config.session.serialize: false opts one out", async () => {
      const app = await start({ store: makeStore(), secrets: [SECRET], serialize: true });
      const serial = await race(app.url, "/app-wide");
      expect([serial.final, app.most()]).toEqual([N, 1]);
      const out = await race(app.url, "/opted-out");
      expect(out.final).toBe(1);
    });
  },
);

describe("a serialised request that waits too long", () => {
  it("answers 503 with Retry-After and a generic body, and the session is not left held", async () => {
    const sessions = createSessions<SessionShape>({
      store: createMemoryStore(),
      secrets: [SECRET],
      serialize: { waitMs: 150, leaseMs: 2_000 },
    });
    const app = await start({ sessions });
    const b = cookieJar();
    await b.fetch(`${app.url}/start`, { method: "POST" });
    const holder = b.fetch(`${app.url}/hold`, { method: "POST" });
    await app.hold.inside;
    const busy = await b.fetch(`${app.url}/serial`, { method: "POST" });
    expect(busy.status).toBe(503);
    expect(busy.headers.get("retry-after")).toBe("2");
    expect(await busy.json()).toEqual({
      statusCode: 503,
      code: "SESSION_BUSY",
      error: "Service Unavailable",
      message: "Session busy",
    });
    expect(busy.headers.getSetCookie()).toEqual([]);
    app.hold.open();
    expect((await holder).status).toBe(200);
    // The waiter wrote nothing, the holder's change is in, and the next request goes through.
    expect(await (await b.fetch(`${app.url}/peek`)).json()).toEqual({ n: 0, held: true });
    expect(await (await b.fetch(`${app.url}/serial`, { method: "POST" })).json()).toEqual({ n: 1 });
  });
});

describe("lease timings per route and per plugin", () => {
  it("a route's config.session.serialize timings replace the app's", async () => {
    // The app would wait far longer than a test may take: only the route's own waitMs can answer before the test times out.
    const app = await start({ store: createMemoryStore(), secrets: [SECRET], serialize: { waitMs: 60_000 } });
    const b = cookieJar();
    await b.fetch(`${app.url}/start`, { method: "POST" });
    const holder = b.fetch(`${app.url}/hold`, { method: "POST" });
    await app.hold.inside;
    expect((await b.fetch(`${app.url}/impatient`, { method: "POST" })).status).toBe(503);
    app.hold.open();
    expect((await holder).status).toBe(200);
  });

  it("a core you built takes lease timings from the plugin's serialize", async () => {
    const sessions = createSessions<SessionShape>({ store: createMemoryStore(), secrets: [SECRET] });
    const app = await start({ sessions, serialize: { waitMs: 1 } });
    const b = cookieJar();
    await b.fetch(`${app.url}/start`, { method: "POST" });
    const holder = b.fetch(`${app.url}/hold`, { method: "POST" });
    await app.hold.inside;
    expect((await b.fetch(`${app.url}/app-wide`, { method: "POST" })).status).toBe(503);
    app.hold.open();
    expect((await holder).status).toBe(200);
  });

  it.each([
    [
      "a negative waitMs",
      { waitMs: -1 },
      /route POST \/r: config\.session\.serialize: serialize\.waitMs must be a positive/,
    ],
    ["an unknown timing", { wait: 1 }, /unknown lease timing "wait"/],
    ["a string", "yes", /takes true, false or lease timings/],
  ])("a route with %s fails when it is added", async (_, serialize, message) => {
    const app = Fastify();
    cleanups.push(() => app.close());
    await app.register(kvSession, { store: createMemoryStore(), secrets: [SECRET] });
    expect(() =>
      app.post("/r", { config: { session: { serialize: serialize as never } } }, async () => ({})),
    ).toThrow(message);
  });
});

describe("a serialised route whose reply is hijacked (it never reaches onSend)", () => {
  it("still ends its hold on the session, without writing its changes", async () => {
    const app = await start({ store: createMemoryStore(), secrets: [SECRET] });
    const b = cookieJar();
    await b.fetch(`${app.url}/start`, { method: "POST" });
    expect(await (await b.fetch(`${app.url}/hijack`, { method: "POST" })).text()).toBe("raw");
    const next = await b.fetch(`${app.url}/serial`, { method: "POST" });
    expect([next.status, await next.json()]).toEqual([200, { n: 1 }]);
  });
});

/** A Fastify app on `options` whose POST /start starts a session holding n = 0. */
async function appWithStart(options: KvSessionOptions): Promise<FastifyInstance> {
  const app = Fastify();
  cleanups.push(() => app.close());
  await app.register(kvSession, options);
  // `set` in both APIs (the lazy one's returns a promise).
  app.post("/start", async (request) => {
    await (request.session as unknown as { set(k: string, v: number): unknown }).set("n", 0);
    return { ok: true };
  });
  return app;
}

/** Listens on a free loopback port; returns the base URL. */
async function serve(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: "127.0.0.1" });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

describe("which requests get a listener for a reply that never reaches onSend", () => {
  /** The response's close listeners in a route, for a request with a session cookie. */
  async function closeListeners(options: KvSessionOptions, route: object = {}): Promise<number> {
    const count = async (_request: unknown, reply: FastifyReply) => ({
      listeners: reply.raw.listenerCount("close"),
    });
    const app = await appWithStart(options);
    app.post("/count", route, count);
    const bare = Fastify();
    cleanups.push(() => bare.close());
    bare.post("/count", count);
    const [url, bareUrl] = [await serve(app), await serve(bare)];
    const b = cookieJar();
    await b.fetch(`${url}/start`, { method: "POST" });
    const listeners = async (base: string) =>
      ((await (await b.fetch(`${base}/count`, { method: "POST" })).json()) as { listeners: number })
        .listeners;
    return (await listeners(url)) - (await listeners(bareUrl));
  }
  const store = () => createMemoryStore();

  it("none in the default mode: its requests hold nothing", async () => {
    expect(await closeListeners({ store: store(), secrets: [SECRET] })).toBe(0);
    expect(await closeListeners({ store: store(), secrets: [SECRET], lazy: true } as never)).toBe(0);
    expect(await closeListeners({ store: store(), secrets: [SECRET], serialize: true }, opted(false))).toBe(
      0,
    );
    const sessions = createSessions<SessionShape>({ store: store(), secrets: [SECRET] });
    expect(sessions.serialized).toBe(false);
    expect(await closeListeners({ sessions })).toBe(0);
  });

  it("one in serialised mode, however it is turned on", async () => {
    expect(await closeListeners({ store: store(), secrets: [SECRET], serialize: true })).toBe(1);
    expect(await closeListeners({ store: store(), secrets: [SECRET] }, opted(true))).toBe(1);
    expect(
      await closeListeners(
        { store: store(), secrets: [SECRET], lazy: true } as never,
        opted({ waitMs: 100 }),
      ),
    ).toBe(1);
    const sessions = createSessions<SessionShape>({ store: store(), secrets: [SECRET], serialize: true });
    expect(sessions.serialized).toBe(true);
    expect(await closeListeners({ sessions })).toBe(1);
  });
});

const opted = (serialize: unknown) => ({ config: { session: { serialize } } });

describe("an app-wide serialised core built elsewhere, whose route's reply is hijacked", () => {
  it("still ends its hold on the session", async () => {
    const sessions = createSessions<SessionShape>({
      store: createMemoryStore(),
      secrets: [SECRET],
      serialize: true,
    });
    const app = await appWithStart({ sessions });
    app.post("/hijack", async (request, reply) => {
      request.session.n = 100;
      reply.hijack();
      reply.raw.end("raw");
    });
    app.post("/next", async (request) => ({ n: request.session.n ?? null }));
    const url = await serve(app);
    const b = cookieJar();
    await b.fetch(`${url}/start`, { method: "POST" });
    expect(await (await b.fetch(`${url}/hijack`, { method: "POST" })).text()).toBe("raw");
    // Without the release this request would wait for the lease (5 s), then answer 503.
    const next = await b.fetch(`${url}/next`, { method: "POST" });
    expect([next.status, await next.json()]).toEqual([200, { n: 0 }]);
  });
});

describe("a serialised request whose save() fails while it holds the session", () => {
  it("answers 503, and its hold ends: the next request waits for the lease only, not for ever", async () => {
    const { store, failing } = storeWithFailingWrites();
    // A short lease: what is left of the failed holder's lease once its hold in this process ended.
    const sessions = createSessions<SessionShape>({ store, secrets: [SECRET], serialize: { leaseMs: 300 } });
    const app = await appWithStart({ sessions });
    app.post("/save-fails", { config: { session: { serialize: true } } }, async (request) => {
      request.session.n = 100;
      failing.on = true;
      await request.session.save();
      return { saved: true };
    });
    app.post("/serial", { config: { session: { serialize: true } } }, async (request) => {
      request.session.n = (request.session.n ?? 0) + 1;
      return { n: request.session.n };
    });
    const url = await serve(app);
    const b = cookieJar();
    await b.fetch(`${url}/start`, { method: "POST" });
    const failed = await b.fetch(`${url}/save-fails`, { method: "POST" });
    expect([failed.status, failed.headers.get("retry-after")]).toEqual([503, "1"]);
    failing.on = false;
    // Its change was not written afterwards either.
    expect(await (await b.fetch(`${url}/serial`, { method: "POST" })).json()).toEqual({ n: 1 });
  });
});
