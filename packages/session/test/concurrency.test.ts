import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createStore, delegateDriver } from "@kvsession/kv/driver";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSessions, hashId, SessionConflictError, type Sessions } from "../src/index.js";
import { createJar, request, SECRET } from "./helpers.js";

type Data = Record<string, number>;
let store: KvStore;
let sessions: Sessions<Data>;

beforeEach(() => {
  store = createMemoryStore();
  sessions = createSessions<Data>({ store, secrets: [SECRET] });
});
afterEach(() => store.close());

async function live(): Promise<ReturnType<typeof createJar>> {
  const jar = createJar();
  await request(sessions, jar, (s) => s.set("base", 0));
  return jar;
}

describe("concurrent requests on one session", () => {
  it("two requests changing different keys both keep their change (no lost update)", async () => {
    const jar = await live();
    const a = sessions.open({ cookieHeader: jar.header(), secure: true });
    const b = sessions.open({ cookieHeader: jar.header(), secure: true });
    await Promise.all([a.get("base"), b.get("base")]); // both loaded the same version
    a.set("a", 1);
    b.set("b", 2);
    b.delete("base");
    const [ra, rb] = await Promise.all([a.commit(), b.commit()]);
    expect([ra.outcome, rb.outcome]).toEqual(["saved", "saved"]);
    expect((await request(sessions, jar, (s) => s.all())).value).toEqual({ a: 1, b: 2 });
  });

  it("a slow save finishing after destroy does not resurrect the session", async () => {
    const jar = await live();
    const h = hashId(jar.jar.get("__Host-sid")!.split(".")[0]!);
    const slow = sessions.open({ cookieHeader: jar.header(), secure: true });
    await slow.get("base");
    await request(sessions, jar, (s) => s.destroy());
    slow.set("late", 1);
    const out = await slow.commit();
    expect(out.outcome).toBe("gone");
    expect(await sessions.records.get(h)).toBeUndefined();
    expect(out.setCookie[0]).toMatch(/Max-Age=0/);
  });

  it("a slow save that never read the session does not resurrect it either", async () => {
    const jar = await live();
    const cookie = jar.header();
    await request(sessions, jar, (s) => s.destroy());
    const slow = sessions.open({ cookieHeader: cookie, secure: true });
    slow.set("late", 1);
    const out = await slow.commit();
    // A fresh session with a new ID: the destroyed one stays destroyed.
    expect(out.outcome).toBe("created");
    expect(await sessions.records.get(hashId(cookie.split("=")[1]!.split(".")[0]!))).toBeUndefined();
  });

  it("parallel regenerate: exactly one wins, the old ID dies, no orphan copy of the data", async () => {
    const jar = await live();
    const oldHandle = hashId(jar.jar.get("__Host-sid")!.split(".")[0]!);
    const a = sessions.open({ cookieHeader: jar.header(), secure: true });
    const b = sessions.open({ cookieHeader: jar.header(), secure: true });
    await Promise.all([a.get("base"), b.get("base")]);
    const results = await Promise.allSettled([a.regenerate(), b.regenerate()]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(SessionConflictError);
    const winner = results[0]!.status === "fulfilled" ? a : b;
    const res = await winner.commit();
    const fresh = createJar();
    fresh.apply(res);
    expect((await request(sessions, fresh, (s) => s.get("base"))).value).toBe(0);
    const holders: string[] = [];
    for await (const e of sessions.records.entries()) {
      if (JSON.parse(new TextDecoder().decode(e.value)).data) holders.push(e.key);
    }
    expect(holders).toHaveLength(1);
    expect(holders).not.toContain(oldHandle);
  });

  it("concurrent logins of one user are all indexed, and revokeUser ends them all", async () => {
    const jars = Array.from({ length: 20 }, () => createJar());
    await Promise.all(jars.map((j, i) => request(sessions, j, (s) => s.bindUser("ada", { i }))));
    const list = await sessions.listUserSessions("ada");
    expect(list.map((l) => (l.meta as { i: number }).i).sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
    expect(await sessions.revokeUser("ada")).toBe(20);
    for (const j of jars) expect((await request(sessions, j, (s) => s.userId())).value).toBeUndefined();
  });

  it("writes to one session from this process go out in groups: 12 concurrent commits on each of two sessions, no retry", async () => {
    const mem = createMemoryStore();
    const base = delegateDriver(mem, "counting");
    let swaps = 0;
    const counted = createStore({
      ...base,
      compareAndSet: (k, x, v, e) => {
        swaps++;
        return base.compareAndSet!(k, x, v, e);
      },
    });
    const s = createSessions<Data>({ store: counted, secrets: [SECRET] });
    const jars = [createJar(), createJar()];
    for (const jar of jars) await request(s, jar, (x) => x.set("base", 0));
    const opened = jars.flatMap((jar) =>
      Array.from({ length: 12 }, () => s.open({ cookieHeader: jar.header(), secure: true })),
    );
    await Promise.all(opened.map((x) => x.get("base"))); // all 24 loaded their session's same version
    for (const [i, x] of opened.entries()) x.set(`k${i}`, i);
    swaps = 0;
    // Interleaved: session 1, session 2, session 1… so each session's group collects across the other's.
    const order = opened.map((_, i) => (i % 2 === 0 ? i / 2 : 12 + (i - 1) / 2));
    const outcomes = await Promise.all(order.map((i) => opened[i]!.commit().then((r) => r.outcome)));
    expect(outcomes).toEqual(Array(24).fill("saved"));
    // Per session: the twelve commits issued in one turn go out as one write.
    expect(swaps).toBe(2);
    for (const [j, jar] of jars.entries()) {
      const all = (await request(s, jar, (x) => x.all())).value as Data;
      expect(Object.keys(all).sort()).toEqual(
        ["base", ...Array.from({ length: 12 }, (_, i) => `k${j * 12 + i}`)].sort(),
      );
    }
    await mem.close();
  });

  describe("when a group's first write goes, by the store's settlesInTurn", () => {
    /** A memory store that logs its compare-and-sets and answers in the turn or (settlesInTurn false) a few ms later. */
    function storeAnswering(settlesInTurn: boolean) {
      const mem = createMemoryStore();
      const base = delegateDriver(mem, "counting");
      const later = <T>(v: T | Promise<T>) =>
        settlesInTurn ? v : new Promise<T>((r) => setTimeout(() => r(v), 5));
      const log: string[] = [];
      const store = createStore({
        ...base,
        capabilities: { ...base.capabilities, settlesInTurn },
        getVersioned: (k) => later(base.getVersioned!(k)),
        compareAndSet: (k, x, v, e) => {
          log.push("write");
          return later(base.compareAndSet!(k, x, v, e));
        },
      });
      return { store, log, close: () => mem.close() };
    }

    /** Five requests of one session, loaded together, each committing from a task of its own in one turn. */
    async function fiveCommitsInOneTurn(settlesInTurn: boolean) {
      const c = storeAnswering(settlesInTurn);
      const s = createSessions<Data>({ store: c.store, secrets: [SECRET] });
      const jar = createJar();
      await request(s, jar, (x) => x.set("base", 0));
      const opened = Array.from({ length: 5 }, () => s.open({ cookieHeader: jar.header(), secure: true }));
      await Promise.all(opened.map((x) => x.get("base")));
      for (const [i, x] of opened.entries()) x.set(`k${i}`, i);
      c.log.length = 0;
      const commits = await new Promise<Array<Promise<unknown>>>((resolve) => {
        const out: Array<Promise<unknown>> = [];
        for (const [i, x] of opened.entries())
          setImmediate(() => {
            c.log.push(`task ${i}`);
            out.push(x.commit());
            if (out.length === 5) resolve(out);
          });
      });
      await Promise.all(commits);
      const all = (await request(s, jar, (x) => x.all())).value as Data;
      expect(Object.keys(all).sort()).toEqual(["base", "k0", "k1", "k2", "k3", "k4"]);
      await c.close();
      return c.log;
    }

    const tasks = [0, 1, 2, 3, 4].map((i) => `task ${i}`);

    it("in-process store: commits from the tasks of one turn share one write after the turn", async () => {
      expect(await fiveCommitsInOneTurn(true)).toEqual([...tasks, "write"]);
    });

    it("store that answers later: the first commit writes at once, the rest share the next write", async () => {
      expect(await fiveCommitsInOneTurn(false)).toEqual([tasks[0], "write", ...tasks.slice(1), "write"]);
    });
  });

  it("on a store without compare-and-set the core falls back to plain writes (weaker, documented)", async () => {
    const mem = createMemoryStore();
    const base = delegateDriver(mem, "no-cas");
    const plain = createStore({
      ...base,
      capabilities: { ...mem.capabilities, compareAndSet: false, setIfAbsent: false },
      setIfAbsent: undefined,
      getVersioned: undefined,
      compareAndSet: undefined,
    });
    const s = createSessions<Data>({ store: plain, secrets: [SECRET] });
    const jar = createJar();
    await request(s, jar, (x) => x.set("a", 1));
    await request(s, jar, (x) => x.set("b", 2));
    expect((await request(s, jar, (x) => x.all())).value).toEqual({ a: 1, b: 2 });
    await request(s, jar, (x) => x.regenerate());
    expect((await request(s, jar, (x) => x.all())).value).toEqual({ a: 1, b: 2 });
    await mem.close();
  });

  it("property: over random interleavings no acknowledged change is lost and no destroyed session returns", async () => {
    type Req = { write: number; del: number | undefined; destroy: boolean; readFirst: boolean };
    const reqArb = fc.record({
      write: fc.integer({ min: 0, max: 1 }), // 1 = sets its own key
      del: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
      destroy: fc.boolean(),
      readFirst: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(reqArb, { minLength: 2, maxLength: 5 }),
        async (sched, reqs: Req[]) => {
          const mem = createMemoryStore();
          const base = delegateDriver(mem, "scheduled");
          const wait = () => sched.schedule(Promise.resolve());
          const scheduled = createStore({
            ...base,
            get: (k) => wait().then(() => base.get(k)),
            set: (k, v, e) => wait().then(() => base.set(k, v, e)),
            delete: (k) => wait().then(() => base.delete(k)),
            getMany: (ks) => wait().then(() => base.getMany!(ks)),
            setIfAbsent: (k, v, e) => wait().then(() => base.setIfAbsent!(k, v, e)),
            getVersioned: (k) => wait().then(() => base.getVersioned!(k)),
            compareAndSet: (k, x, v, e) => wait().then(() => base.compareAndSet!(k, x, v, e)),
          });
          const ss = createSessions<Data>({ store: mem, secrets: [SECRET], maxRetries: 50 });
          const sched$ = createSessions<Data>({ store: scheduled, secrets: [SECRET], maxRetries: 50 });
          // Seed: a live session with keys p0..p3.
          const jar = createJar();
          await request(ss, jar, (s) => {
            for (let i = 0; i < 4; i++) s.set(`p${i}`, i);
          });
          const handle = hashId(jar.jar.get("__Host-sid")!.split(".")[0]!);
          const acked: Req[] = [];
          const indexOf = new Map<Req, number>();
          let destroyed = false;
          const run = async (r: Req, i: number) => {
            indexOf.set(r, i);
            const s = sched$.open({ cookieHeader: jar.header(), secure: true });
            if (r.readFirst) await s.get("p0");
            if (r.destroy) {
              await s.destroy();
              destroyed = true;
              await s.commit();
              return;
            }
            if (r.write) s.set(`r${i}`, i);
            if (r.del !== undefined) s.delete(`p${r.del}`);
            const out = await s.commit();
            if (out.outcome === "saved") acked.push(r);
          };
          await sched.waitFor(Promise.allSettled(reqs.map(run)));
          const raw = await mem.withPrefix("sess:").get(handle);
          const rec = raw ? JSON.parse(new TextDecoder().decode(raw)) : undefined;
          if (destroyed) {
            expect(rec?.data).toBeUndefined();
          } else {
            expect(rec?.data).toBeDefined();
            for (const r of acked) {
              const i = indexOf.get(r)!;
              if (r.write) expect(rec.data[`r${i}`]).toBe(i);
              if (r.del !== undefined) expect(rec.data).not.toHaveProperty(`p${r.del}`);
            }
            // Nothing that was not acknowledged appears.
            for (const [r, i] of indexOf)
              if (!acked.includes(r) && r.write) expect(rec.data).not.toHaveProperty(`r${i}`);
          }
          await mem.close();
        },
      ),
      { numRuns: 150 },
    );
  });
});
