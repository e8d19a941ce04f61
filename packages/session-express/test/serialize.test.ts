import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { SessionConfigError } from "@kvsession/session";
import { countingStore } from "@kvsession/test-helpers";
import express from "express";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type KvSessionOptions, kvSession } from "../src/index.js";
import { closeServers, SECRET, serve } from "./helpers.js";
import { withoutCompareAndSet } from "./no-cas-store.js";

afterEach(closeServers);

const dir = mkdtempSync(join(tmpdir(), "kvsession-express-serialize-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Req = express.Request & { session: Record<string, unknown> };
const N = 12;

/** Read n, yield to the event loop (other requests of the session run meanwhile), write n + 1. */
const readModifyWrite: express.RequestHandler = async (req, res) => {
  const s = (req as Req).session;
  const n = (s.n as number | undefined) ?? 0;
  await new Promise((r) => setTimeout(r, 2));
  s.n = n + 1;
  res.json({ n: s.n });
};

const stores: Array<[string, () => KvStore]> = [
  ["memory", () => createMemoryStore()],
  ["SQLite", () => createSqliteStore({ path: join(dir, `${Math.random().toString(36).slice(2)}.db`) })],
];

/** The app-wide middleware, a serialised route and a reader. */
async function cartApp(store: KvStore, options: Partial<KvSessionOptions> = {}) {
  const a = express();
  const session = kvSession({ store, secrets: [SECRET], ...options } as KvSessionOptions & {
    store: KvStore;
  });
  a.use(session);
  a.post("/serial", session.serialize(), readModifyWrite);
  a.get("/n", (req, res) => res.json({ n: (req as Req).session.n ?? 0 }));
  const s = await serve(a);
  const c = s.client();
  // One session, one cookie, shared by every request below.
  await c.request("/serial", { method: "POST" });
  return { ...s, c, session };
}

describe.each(stores)("serialised mode under Express (%s)", (_, makeStore) => {
  it("concurrent read-modify-write requests with one cookie lose nothing on a serialize() route", async () => {
    const { c } = await cartApp(makeStore());
    const answers = await Promise.all(
      Array.from({ length: N }, () => c.request("/serial", { method: "POST" })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(N).fill(200));
    // Each request saw the one before it: every count from 2 to N + 1 once.
    expect(answers.map((a) => JSON.parse(a.text).n).sort((x, y) => x - y)).toEqual(
      Array.from({ length: N }, (_, i) => i + 2),
    );
    expect(JSON.parse((await c.request("/n")).text).n).toBe(N + 1);
  });

  it("the same requests without it lose updates (every request reads before any writes)", async () => {
    const store = makeStore();
    const a = express();
    a.use(kvSession({ store, secrets: [SECRET] }));
    let waiting = 0;
    let release!: () => void;
    const all = new Promise<void>((r) => (release = r));
    a.post("/init", (req, res) => {
      (req as Req).session.n = 0;
      res.end();
    });
    a.post("/plain", async (req, res) => {
      const s = (req as Req).session;
      const n = s.n as number;
      if (++waiting === N) release();
      await all;
      s.n = n + 1;
      res.end();
    });
    a.get("/n", (req, res) => res.json({ n: (req as Req).session.n }));
    const { client } = await serve(a);
    const c = client();
    await c.request("/init", { method: "POST" });
    await Promise.all(Array.from({ length: N }, () => c.request("/plain", { method: "POST" })));
    expect(JSON.parse((await c.request("/n")).text).n).toBe(1);
  });
});

describe("serialised mode: where it applies and what a timeout answers", () => {
  it("kvSession({ serialize }) serialises every request of the app", async () => {
    const a = express();
    a.use(kvSession({ store: createMemoryStore(), secrets: [SECRET], serialize: true }));
    a.post("/rmw", readModifyWrite);
    const { client } = await serve(a);
    const c = client();
    await c.request("/rmw", { method: "POST" });
    await Promise.all(Array.from({ length: N }, () => c.request("/rmw", { method: "POST" })));
    expect(JSON.parse((await c.request("/rmw", { method: "POST" })).text).n).toBe(N + 2);
  });

  it("session.serialize() mounted on its own (no app-wide middleware) serialises that route", async () => {
    const a = express();
    const session = kvSession({ store: createMemoryStore(), secrets: [SECRET] });
    a.post("/rmw", session.serialize(), readModifyWrite);
    const { client } = await serve(a);
    const c = client();
    await c.request("/rmw", { method: "POST" });
    await Promise.all(Array.from({ length: N }, () => c.request("/rmw", { method: "POST" })));
    expect(JSON.parse((await c.request("/rmw", { method: "POST" })).text).n).toBe(N + 2);
  });

  it("what an earlier middleware assigned survives the route's reload under the lease", async () => {
    const a = express();
    const session = kvSession({ store: createMemoryStore(), secrets: [SECRET] });
    a.use(session);
    a.use((req, _res, next) => {
      (req as Req).session.seen = true;
      next();
    });
    a.post("/rmw", session.serialize(), readModifyWrite);
    a.get("/show", (req, res) => res.json({ ...(req as Req).session }));
    const { client } = await serve(a);
    const c = client();
    await c.request("/rmw", { method: "POST" });
    await c.request("/rmw", { method: "POST" });
    expect(JSON.parse((await c.request("/show")).text)).toEqual({ n: 2, seen: true });
  });

  it("a request that waits longer than waitMs gets 503 with Retry-After and a generic body, never a hang", async () => {
    let release!: () => void;
    let arrived!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (arrived = r));
    const a = express();
    a.use(kvSession({ store: createMemoryStore(), secrets: [SECRET], serialize: { waitMs: 300 } }));
    a.post("/hold", async (req, res) => {
      (req as Req).session.held = true;
      arrived();
      await held;
      res.end("done");
    });
    a.post("/rmw", readModifyWrite);
    const { client } = await serve(a);
    const c = client();
    await c.request("/rmw", { method: "POST" });
    const holding = c.request("/hold", { method: "POST" });
    await reached;
    // Express's own final handler answers: status, Retry-After and message come from the error.
    const busy = await c.request("/rmw", { method: "POST" });
    release();
    expect(busy.status).toBe(503);
    expect(Number(busy.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(busy.text).toContain("Session busy");
    expect(busy.text).not.toMatch(/\bat\s.*:\d+:\d+/);
    expect((await holding).text).toBe("done");
    // The session is not stuck: the next request goes through.
    expect(JSON.parse((await c.request("/rmw", { method: "POST" })).text).n).toBe(2);
  });

  it("the same timeout on a serialize() route after the app-wide load", async () => {
    let release!: () => void;
    let arrived!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (arrived = r));
    const a = express();
    const session = kvSession({ store: createMemoryStore(), secrets: [SECRET] });
    a.use(session);
    a.post("/hold", session.serialize(), async (_req, res) => {
      arrived();
      await held;
      res.end("done");
    });
    a.post("/rmw", session.serialize(), readModifyWrite);
    let reachedHandler = false;
    a.post("/busy", session.serialize(), (_req, res) => {
      reachedHandler = true;
      res.end();
    });
    const { client } = await serve(a);
    const c = client();
    await c.request("/rmw", { method: "POST" });
    const holding = c.request("/hold", { method: "POST" });
    await reached;
    // The core's default wait (waitMs) passes before this answers.
    const busy = await c.request("/busy", { method: "POST" });
    release();
    expect([busy.status, busy.headers.get("retry-after") !== null, reachedHandler]).toEqual([
      503,
      true,
      false,
    ]);
    expect((await holding).text).toBe("done");
  });

  it("serialize({ waitMs }) gives the route its own lease timings", async () => {
    let release!: () => void;
    let arrived!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (arrived = r));
    const a = express();
    // The app would wait far longer than a test may take: only the route's own waitMs can answer before the test times out.
    const session = kvSession({
      store: createMemoryStore(),
      secrets: [SECRET],
      serialize: { waitMs: 60_000 },
    });
    a.post("/hold", session, async (req, res) => {
      (req as Req).session.held = true;
      arrived();
      await held;
      res.end("done");
    });
    a.post("/impatient", session.serialize({ waitMs: 1 }), readModifyWrite);
    const { client } = await serve(a);
    const c = client();
    await c.request("/impatient", { method: "POST" });
    const holding = c.request("/hold", { method: "POST" });
    await reached;
    const busy = await c.request("/impatient", { method: "POST" });
    release();
    expect(busy.status).toBe(503);
    expect((await holding).text).toBe("done");
    expect(JSON.parse((await c.request("/impatient", { method: "POST" })).text).n).toBe(2);
  });

  it.each([
    [
      "a negative waitMs",
      { waitMs: -1 },
      /session\.serialize\(\): serialize\.waitMs must be a positive integer/,
    ],
    ["an unknown timing", { wait: 5 }, /unknown lease timing "wait"/],
    ["false", false, /takes true or lease timings/],
  ])("serialize() with %s fails at start-up", (_, options, message) => {
    const session = kvSession({ store: createMemoryStore(), secrets: [SECRET] });
    expect(() => session.serialize(options as never)).toThrow(SessionConfigError);
    expect(() => session.serialize(options as never)).toThrow(message);
  });

  it("serialize() on a store without compare-and-set fails at start-up", () => {
    const session = kvSession({ store: withoutCompareAndSet(createMemoryStore()), secrets: [SECRET] });
    expect(() => session.serialize()).toThrow(SessionConfigError);
  });
});

// What the README's "Cost" line says, counted on a real memory store for a session this process
// committed last (the common case of one app server).
describe("serialised mode's store round trips under Express", () => {
  async function counted(serializeAll: boolean) {
    const { store, calls } = countingStore();
    const a = express();
    const session = kvSession({ store, secrets: [SECRET], ...(serializeAll ? { serialize: true } : {}) });
    a.use(session);
    a.post("/serial", session.serialize(), readModifyWrite);
    a.post("/plain", readModifyWrite);
    a.get("/n", (req, res) => res.json({ n: (req as Req).session.n ?? 0 }));
    const s = await serve(a);
    const c = s.client();
    await c.request("/plain", { method: "POST" });
    await c.request("/plain", { method: "POST" });
    calls.reset();
    return { c, calls };
  }

  it("default mode: one read and one compare-and-set per request that changes the session", async () => {
    const { c, calls } = await counted(false);
    expect((await c.request("/plain", { method: "POST" })).status).toBe(200);
    expect(Object.fromEntries(calls.byMethod)).toEqual({ getVersioned: 1, compareAndSet: 1 });
  });

  it("app-wide: the lease's compare-and-set and the commit's, no read", async () => {
    const { c, calls } = await counted(true);
    expect((await c.request("/plain", { method: "POST" })).status).toBe(200);
    expect(Object.fromEntries(calls.byMethod)).toEqual({ compareAndSet: 2 });
    // A request that changes nothing still writes once more than it would unserialised: the commit ends the lease.
    calls.reset();
    expect((await c.request("/n")).status).toBe(200);
    expect(Object.fromEntries(calls.byMethod)).toEqual({ compareAndSet: 2 });
  });

  it("per route after the app-wide middleware: that middleware's read, then the lease's and the commit's compare-and-sets", async () => {
    const { c, calls } = await counted(false);
    // After an unserialised write the lease is taken on what a read finds.
    expect((await c.request("/serial", { method: "POST" })).status).toBe(200);
    expect(Object.fromEntries(calls.byMethod)).toEqual({ getVersioned: 2, compareAndSet: 2 });
    // After this process's serialised commit, the remembered one is tried first.
    calls.reset();
    expect((await c.request("/serial", { method: "POST" })).status).toBe(200);
    expect(Object.fromEntries(calls.byMethod)).toEqual({ getVersioned: 1, compareAndSet: 2 });
  });
});
