import { createMemoryStore } from "@kvsession/kv";
import { countingStore, wrapStore } from "@kvsession/test-helpers";
import { describe, expect, it } from "vitest";
import { createSessions, type Sessions } from "../src/index.js";
import { SECRET, seeded } from "./helpers.js";

// What a request costs in store round trips when one session is busy: counted on a real memory
// store, so a change that brings back a read shows here.

async function increment(sessions: Sessions, cookieHeader: string): Promise<void> {
  const s = sessions.open({ cookieHeader, secure: true });
  s.set("n", ((await s.get("n")) as number) + 1);
  await s.commit();
}

/** A session on a memory store whose writes take a timer's turn to land; the store's calls counted from here on. */
async function slowWrites() {
  let writing = () => {};
  const slow = wrapStore(createMemoryStore(), (method, call) => {
    if (method !== "compareAndSet") return call();
    writing();
    return new Promise((r) => setTimeout(r, 5)).then(call);
  });
  const { store, calls } = countingStore(slow);
  const sessions = createSessions({ store, secrets: [SECRET] });
  const cookieHeader = await seeded(sessions);
  calls.reset();
  /** Resolves when the next compare-and-set is issued; it lands a timer's turn later. */
  const nextWrite = () => new Promise<void>((r) => (writing = r));
  return { sessions, cookieHeader, calls, nextWrite };
}

describe("default mode: concurrent writes to one session", () => {
  it("commits of one turn share one write, and the line's next write builds on it: one read per request (its load), nothing more", async () => {
    // Writes that take a timer's turn to land, so the second wave queues behind the first.
    const { sessions, cookieHeader, calls, nextWrite } = await slowWrites();
    const opened = Array.from({ length: 20 }, () => sessions.open({ cookieHeader, secure: true }));
    await Promise.all(opened.map((s) => s.exists()));
    // Each request changes a key of its own, so every change must be found afterwards.
    for (const [i, s] of opened.entries()) s.set(`k${i}`, i);
    const writing = nextWrite();
    const first = opened.slice(0, 10).map((s) => s.commit());
    await writing; // the first wave's write is on its way, and lands a timer's turn later
    const second = opened.slice(10).map((s) => s.commit());
    await Promise.all([...first, ...second]);
    expect(Object.fromEntries(calls.byMethod)).toEqual({ getVersioned: 20, compareAndSet: 2 });
    const after = sessions.open({ cookieHeader, secure: true });
    for (let i = 0; i < 20; i++) expect(await after.get(`k${i}`)).toBe(i);
  });

  it("a request whose load was answered before the line's write landed builds on that write: no failed compare-and-set, no second read", async () => {
    const { sessions, cookieHeader, calls } = await slowWrites();
    const first = sessions.open({ cookieHeader, secure: true });
    await first.exists();
    first.set("x", 1);
    const written = first.commit();
    // Loaded while the first write is on its way: it holds the version that write replaces.
    const second = sessions.open({ cookieHeader, secure: true });
    await second.exists();
    await written;
    // Committed in the turn the write landed in, as a request answered with it does.
    second.set("y", 2);
    expect((await second.commit()).outcome).toBe("saved");
    expect(Object.fromEntries(calls.byMethod)).toEqual({ getVersioned: 2, compareAndSet: 2 });
    const after = sessions.open({ cookieHeader, secure: true });
    expect([await after.get("x"), await after.get("y")]).toEqual([1, 2]);
  });

  it("a write from another process in between is read, and nothing of it is lost", async () => {
    const { store, calls } = countingStore();
    const a = createSessions({ store, secrets: [SECRET] });
    const b = createSessions({ store, secrets: [SECRET] });
    const cookieHeader = await seeded(a);
    const first = a.open({ cookieHeader, secure: true });
    const second = a.open({ cookieHeader, secure: true });
    await Promise.all([first.exists(), second.exists()]);
    first.set("x", 1);
    second.set("y", 2);
    const line = [first.commit(), second.commit()];
    // Process b writes while a's line is in flight: a's second write must not build on its first blindly.
    const other = b.open({ cookieHeader, secure: true });
    other.set("z", 3);
    await Promise.all([...line, other.commit()]);
    calls.reset();
    const after = a.open({ cookieHeader, secure: true });
    expect([await after.get("x"), await after.get("y"), await after.get("z")]).toEqual([1, 2, 3]);
  });
  it("an object a request changed in place without set() after its commit reaches no later write of the line", async () => {
    const sessions = createSessions({ store: countingStore().store, secrets: [SECRET] });
    const cookieHeader = await seeded(sessions);
    const a = sessions.open({ cookieHeader, secure: true });
    const b = sessions.open({ cookieHeader, secure: true });
    await Promise.all([a.exists(), b.exists()]);
    a.set("cart", { items: ["a"] });
    b.set("other", 1);
    const first = a.commit().then(async () => {
      ((await a.get("cart")) as { items: string[] }).items.push("never saved");
    });
    await Promise.all([first, b.commit()]);
    expect(await sessions.open({ cookieHeader, secure: true }).get("cart")).toEqual({ items: ["a"] });
  });
});

describe("serialised mode", () => {
  it("a session this process committed last is taken with one compare-and-set and committed with another: no read", async () => {
    const { store, calls } = countingStore();
    const sessions = createSessions({ store, secrets: [SECRET], serialize: true });
    const cookieHeader = await seeded(sessions);
    await increment(sessions, cookieHeader); // not yet known: read, take, commit
    calls.reset();
    await increment(sessions, cookieHeader);
    await increment(sessions, cookieHeader);
    expect(Object.fromEntries(calls.byMethod)).toEqual({ compareAndSet: 4 });
    expect(await sessions.open({ cookieHeader, secure: true, serialize: false }).get("n")).toBe(3);
  });

  it("after another process's commit the remembered one is stale: the lease is taken on what is stored", async () => {
    const { store, calls } = countingStore();
    const a = createSessions({ store, secrets: [SECRET], serialize: true });
    const b = createSessions({ store, secrets: [SECRET], serialize: true });
    const cookieHeader = await seeded(a);
    await increment(a, cookieHeader);
    await increment(b, cookieHeader);
    calls.reset();
    await increment(a, cookieHeader);
    // The remembered commit failed its compare-and-set, then a read, the lease, the commit.
    expect(Object.fromEntries(calls.byMethod)).toEqual({ compareAndSet: 3, getVersioned: 1 });
    expect(await a.open({ cookieHeader, secure: true, serialize: false }).get("n")).toBe(3);
  });

  it("an object a request changed in place without set() after its commit reaches no later request", async () => {
    const sessions = createSessions({ store: countingStore().store, secrets: [SECRET], serialize: true });
    const cookieHeader = await seeded(sessions);
    const first = sessions.open({ cookieHeader, secure: true });
    first.set("cart", { items: ["a"] });
    await first.commit();
    const held = (await first.get("cart")) as { items: string[] };
    held.items.push("never saved");
    const next = sessions.open({ cookieHeader, secure: true });
    expect(await next.get("cart")).toEqual({ items: ["a"] });
    await next.commit();
  });

  it("a destroyed session stays destroyed for the next request of this process", async () => {
    const sessions = createSessions({ store: countingStore().store, secrets: [SECRET], serialize: true });
    const cookieHeader = await seeded(sessions);
    await increment(sessions, cookieHeader);
    const s = sessions.open({ cookieHeader, secure: true });
    await s.destroy();
    await s.commit();
    const next = sessions.open({ cookieHeader, secure: true });
    expect(await next.get("n")).toBeUndefined();
    expect(await next.exists()).toBe(false);
  });
});
