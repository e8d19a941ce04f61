import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore } from "@kvsession/kv";
import { createStore } from "@kvsession/kv/driver";
import { countingStore } from "@kvsession/test-helpers";
import { afterAll, describe, expect, it } from "vitest";
import {
  createSealedSessions,
  createSessions,
  retryableResponse,
  type SerializeOptions,
  SessionBusyError,
  SessionConfigError,
  SessionConflictError,
  type Sessions,
} from "../src/index.js";
import { createJar, increment, readN, SECRET, seeded } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "kvsession-serialize-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const _files = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two "processes" on one memory store, each with its own serialised-mode timings, and a session. */
async function twoProcesses(a: SerializeOptions, b: SerializeOptions) {
  const store = createMemoryStore();
  const [one, two] = [a, b].map((serialize) => createSessions({ store, secrets: [SECRET], serialize })) as [
    Sessions,
    Sessions,
  ];
  return { one, two, cookie: await seeded(one) };
}

/** A request that has loaded its session: in serialised mode, it holds it until its commit. */
async function holding(sessions: Sessions, cookieHeader: string) {
  const s = sessions.open({ cookieHeader, secure: true });
  await s.get("n");
  return s;
}

describe("serialised mode: holders, waiters and faults", () => {
  it("without it, the same requests lose updates (the control)", async () => {
    const store = createMemoryStore();
    const sessions = createSessions({ store, secrets: [SECRET] });
    const cookie = await seeded(sessions);
    await Promise.all(Array.from({ length: 5 }, () => increment(sessions, cookie, 2)));
    expect(await readN(sessions, cookie)).toBeLessThan(5);
  });

  it("per request: open({ serialize: true }) serialises when the app default is off", async () => {
    const store = createMemoryStore();
    const sessions = createSessions({ store, secrets: [SECRET] });
    const cookie = await seeded(sessions);
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        const s = sessions.open({ cookieHeader: cookie, secure: true, serialize: true });
        const n = (await s.get("n")) as number;
        await sleep(2);
        s.set("n", n + 1);
        await s.commit();
      }),
    );
    expect(await readN(sessions, cookie)).toBe(5);
  });

  it("a request without a session cookie, or that never touches the session, does no store I/O", async () => {
    const { store: counting, calls } = countingStore();
    const sessions = createSessions({ store: counting, secrets: [SECRET], serialize: true });
    const cookie = await seeded(sessions);
    calls.reset();
    await sessions.open({ cookieHeader: cookie, secure: true }).commit();
    await sessions.open({ secure: true }).commit();
    expect(calls.total()).toBe(0);
  });

  it("a waiter gives up after waitMs with a typed, retryable error", async () => {
    const times = { leaseMs: 5_000, waitMs: 50 };
    const { one: sessions, two: other, cookie } = await twoProcesses(times, times);
    const holder = await holding(sessions, cookie);
    for (const waiter of [sessions, other]) {
      const err = await waiter
        .open({ cookieHeader: cookie, secure: true })
        .get("n")
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SessionBusyError);
      const r = retryableResponse(err);
      expect(r?.status).toBe(503);
      expect(Number(r?.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    }
    holder.set("n", 1);
    await holder.commit();
    expect(await sessions.open({ cookieHeader: cookie, secure: true }).get("n")).toBe(1);
  });

  it("a request queued behind another of its session in this process holds it from that request's commit, with no write of its own", async () => {
    const { store: counting, calls } = countingStore();
    const sessions = createSessions({ store: counting, secrets: [SECRET], serialize: true });
    const cookie = await seeded(sessions);
    calls.reset();
    await Promise.all(Array.from({ length: 5 }, () => increment(sessions, cookie, 2)));
    // One read and one compare-and-set take the lease; then each commit's write passes it on.
    expect(calls.byMethod.get("getVersioned")).toBe(1);
    expect(calls.byMethod.get("compareAndSet")).toBe(6);
    expect(await readN(sessions, cookie)).toBe(5);
    // The last commit had no one to pass it to: another process takes the session at once.
    const other = createSessions({
      store: counting,
      secrets: [SECRET],
      serialize: { leaseMs: 60_000, waitMs: 1 },
    });
    expect(await other.open({ cookieHeader: cookie, secure: true }).get("n")).toBe(5);
  });

  it("a process keeps a session while its line lasts: a request in another process waits, then gets SessionBusyError", async () => {
    const {
      one: here,
      two: there,
      cookie,
    } = await twoProcesses({ leaseMs: 60_000, waitMs: 5_000 }, { leaseMs: 60_000, waitMs: 100 });
    const first = await holding(here, cookie);
    const second = here.open({ cookieHeader: cookie, secure: true });
    const secondLoaded = second.get("n");
    const elsewhere = there
      .open({ cookieHeader: cookie, secure: true })
      .get("n")
      .catch((e: unknown) => e);
    first.set("n", 1);
    await first.commit();
    // The commit passed the lease to the next request of this process, not to the one polling elsewhere.
    expect(await secondLoaded).toBe(1);
    expect(await elsewhere).toBeInstanceOf(SessionBusyError);
    second.set("n", 2);
    await second.commit();
    expect(await there.open({ cookieHeader: cookie, secure: true }).get("n")).toBe(2);
  });

  it("a lease passed to a request that gave up waiting is given back, not left to block other processes", async () => {
    const store = createMemoryStore();
    const times = { leaseMs: 60_000, waitMs: 20 };
    const sessions = createSessions({ store, secrets: [SECRET], serialize: times });
    const cookie = await seeded(sessions);
    const holder = await holding(sessions, cookie);
    // Queued behind the holder in this process, then gone: the holder's commit still passes it the lease.
    const gaveUp = await sessions
      .open({ cookieHeader: cookie, secure: true })
      .get("n")
      .catch((e: unknown) => e);
    expect(gaveUp).toBeInstanceOf(SessionBusyError);
    holder.set("n", 1);
    await holder.commit();
    // Another process waits far less than the lease would last: it gets the session.
    const other = createSessions({ store, secrets: [SECRET], serialize: { ...times, waitMs: 1_000 } });
    const s = other.open({ cookieHeader: cookie, secure: true });
    expect(await s.get("n")).toBe(1);
    s.set("n", 2);
    await s.commit();
    expect(await readN(sessions, cookie)).toBe(2);
  });

  it("save() keeps the lease until the commit; reload() under the lease reads what is stored", async () => {
    const store = createMemoryStore();
    const sessions = createSessions({ store, secrets: [SECRET], serialize: { leaseMs: 5_000, waitMs: 50 } });
    const cookie = await seeded(sessions);
    const s = sessions.open({ cookieHeader: cookie, secure: true });
    s.set("n", 1);
    await s.save();
    await expect(sessions.open({ cookieHeader: cookie, secure: true }).get("n")).rejects.toThrow(
      SessionBusyError,
    );
    await s.reload();
    expect(await s.get("n")).toBe(1);
    s.set("n", 2);
    await s.commit();
    expect(await readN(sessions, cookie)).toBe(2);
  });

  it("refuses at start-up on a store without compare-and-set", () => {
    const map = new Map<string, Uint8Array>();
    const plain = createStore({
      name: "plain",
      capabilities: { ttl: "emulated" },
      get: (k) => (map.has(k) ? { value: map.get(k)!, expiresAt: undefined } : undefined),
      set: (k, v) => void map.set(k, v),
      delete: (k) => map.delete(k),
      list: () => ({ items: [], cursor: undefined }),
    });
    expect(() => createSessions({ store: plain, secrets: [SECRET], serialize: true })).toThrow(
      SessionConfigError,
    );
    const sessions = createSessions({ store: plain, secrets: [SECRET] });
    expect(() => sessions.open({ serialize: true })).toThrow(SessionConfigError);
  });

  it("the fence is the record's compare-and-set: a lost lease cannot be written through", async () => {
    const store = createMemoryStore();
    const procA = createSessions({ store, secrets: [SECRET], serialize: { leaseMs: 5_000, waitMs: 50 } });
    const cookie = await seeded(procA);
    const a = procA.open({ cookieHeader: cookie, secure: true });
    expect(await a.get("n")).toBe(0);
    // Another request, not serialised, destroys the session meanwhile.
    await procA.open({ cookieHeader: cookie, secure: true, serialize: false }).destroy();
    a.set("n", 1);
    const r = await a.commit();
    expect(r.outcome).toBe("gone");
    expect(await readN(procA, cookie)).toBeUndefined();
    expect(SessionConflictError).toBeDefined();
  });
});

describe("update(): a change computed at write time", () => {
  it("concurrent increments through update() lose nothing without serialised mode", async () => {
    const store = createMemoryStore();
    const procs = [0, 1].map(() => createSessions({ store, secrets: [SECRET] }));
    const cookie = await seeded(procs[0]!);
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const s = procs[i % 2]!.open({ cookieHeader: cookie, secure: true });
        await s.get("n");
        await sleep(i % 3);
        s.update("n", (n) => ((n as number | undefined) ?? 0) + 1);
        await s.commit();
      }),
    );
    expect(await readN(procs[0]!, cookie)).toBe(20);
  });

  it("builds on a set or update of the same request, reads back through get(), and deletes on undefined", async () => {
    const sessions = createSessions({ store: createMemoryStore(), secrets: [SECRET] });
    const cookie = await seeded(sessions);
    const s = sessions.open({ cookieHeader: cookie, secure: true });
    s.update("n", (n) => ((n as number) ?? 0) + 1);
    s.update("n", (n) => (n as number) * 10);
    expect(await s.get("n")).toBe(10);
    s.set("m", 2);
    s.update("m", (m) => (m as number) + 1);
    s.update("gone", () => undefined);
    await s.commit();
    const t = sessions.open({ cookieHeader: cookie, secure: true });
    expect(await t.all()).toEqual({ n: 10, m: 3 });
  });

  it("a result that is not JSON is refused with a typed error, and nothing is written", async () => {
    const sessions = createSessions({ store: createMemoryStore(), secrets: [SECRET] });
    const cookie = await seeded(sessions);
    const s = sessions.open({ cookieHeader: cookie, secure: true });
    s.update("n", () => new Date() as never);
    await expect(s.commit()).rejects.toMatchObject({ code: "SESSION_DATA" });
    expect(await readN(sessions, cookie)).toBe(0);
  });

  it("works in sealed mode too", async () => {
    const sealed = createSealedSessions({ secrets: [SECRET] });
    const jar = createJar();
    for (let i = 0; i < 3; i++) {
      const s = sealed.open({ cookieHeader: jar.header(), secure: true });
      s.update("n", (n) => ((n as number | undefined) ?? 0) + 1);
      jar.apply(await s.commit());
    }
    expect(await sealed.open({ cookieHeader: jar.header(), secure: true }).get("n")).toBe(3);
  });
});
