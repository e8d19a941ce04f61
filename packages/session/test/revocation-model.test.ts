import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createRedisStore } from "@kvsession/kv-redis";
import { createSqliteStore } from "@kvsession/kv-sqlite";
import { requireService } from "@kvsession/kv-test-suite";
import fc from "fast-check";
import { createClient } from "redis";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSealedSessions, createSessions, hashId, type Session } from "../src/index.js";
import { createJar, type Jar, request, SECRET } from "./helpers.js";

/**
 * A model of who should be logged in, checked against the real thing after every step of a
 * random interleaving of logins, activity, time passing (past idle timeouts), revokeSession,
 * revokeUser (with and without a kept session), logins racing a revocation, and requests in
 * flight across one. After every step: every live session of a user is listed (server mode),
 * and no session a revocation ended can be loaded.
 */
const IDLE = 30 * 60_000;
const ABS = 4 * 60 * 60_000;
const TOUCH = 60_000;
const T0 = Date.UTC(2030, 0, 1);
const USERS = ["ada", "bob"] as const;
const BROWSERS = 4;

type Step =
  | { t: "login"; b: number; u: number }
  | { t: "use"; b: number }
  | { t: "wait"; ms: number }
  | { t: "revokeSession"; b: number }
  | { t: "revokeUser"; u: number; keep: number | undefined }
  | { t: "raceLogin"; b: number; u: number }
  | { t: "inFlight"; b: number };

const browser = fc.integer({ min: 0, max: BROWSERS - 1 });
const user = fc.integer({ min: 0, max: USERS.length - 1 });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ t: fc.constant("login" as const), b: browser, u: user }),
  fc.record({ t: fc.constant("use" as const), b: browser }),
  fc.record({
    t: fc.constant("wait" as const),
    ms: fc.constantFrom(TOUCH, 10 * 60_000, IDLE - 60_000, IDLE + 60_000, 3 * 60 * 60_000),
  }),
  fc.record({ t: fc.constant("revokeSession" as const), b: browser }),
  fc.record({ t: fc.constant("revokeUser" as const), u: user, keep: fc.option(browser, { nil: undefined }) }),
  fc.record({ t: fc.constant("raceLogin" as const), b: browser, u: user }),
  fc.record({ t: fc.constant("inFlight" as const), b: browser }),
);

interface Modelled {
  jar: Jar;
  user: string | undefined;
  createdAt: number;
  lastSeen: number;
}

interface Core {
  open(input: { cookieHeader?: unknown; secure?: boolean }): Session;
  revokeUser(userId: string, options?: { except?: Session }): Promise<unknown>;
  listUserSessions?(userId: string): Promise<Array<{ handle: string }>>;
  revokeSession?(userId: string, handle: string): Promise<boolean>;
}

async function runModel(core: Core, steps: Step[], sealed: boolean): Promise<void> {
  let now = T0;
  vi.setSystemTime(now);
  const bs: Modelled[] = Array.from({ length: BROWSERS }, () => ({
    jar: createJar(),
    user: undefined,
    createdAt: 0,
    lastSeen: 0,
  }));
  const live = (m: Modelled) =>
    m.user !== undefined && now < Math.min(m.lastSeen + IDLE, m.createdAt + ABS) ? m.user : undefined;
  const endAll = (u: string, except?: Modelled) => {
    for (const m of bs) if (m.user === u && m !== except) m.user = undefined;
  };
  // A revocation ends the logins that began up to its own millisecond; real time moves on after it.
  const tick = () => vi.setSystemTime(++now);
  const handleOf = (m: Modelled) => hashId(m.jar.jar.get("__Host-sid")?.split(".")[0] ?? "");

  for (const s of steps) {
    switch (s.t) {
      case "login": {
        await request(core, bs[s.b]!.jar, (x) => x.bindUser(USERS[s.u]!));
        Object.assign(bs[s.b]!, { user: USERS[s.u], createdAt: now, lastSeen: now });
        break;
      }
      case "use": {
        const m = bs[s.b]!;
        const { value } = await request(core, m.jar, async (x) => {
          const u = await x.userId();
          x.set("n", (((await x.get("n")) as number | undefined) ?? 0) + 1);
          return u;
        });
        expect(value).toBe(live(m));
        if (live(m) === undefined) m.user = undefined;
        else m.lastSeen = now;
        break;
      }
      case "wait":
        now += s.ms;
        vi.setSystemTime(now);
        break;
      case "revokeSession": {
        const m = bs[s.b]!;
        if (sealed || m.user === undefined || !core.revokeSession) break;
        expect(await core.revokeSession(m.user, handleOf(m))).toBe(live(m) !== undefined);
        m.user = undefined;
        break;
      }
      case "revokeUser": {
        const u = USERS[s.u]!;
        const kept = s.keep === undefined ? undefined : bs[s.keep]!;
        const keep = kept && live(kept) === u ? kept : undefined;
        if (keep) {
          const x = core.open({ cookieHeader: keep.jar.header(), secure: true });
          await core.revokeUser(u, { except: x });
          // Sealed mode re-seals the kept session at its commit.
          keep.jar.apply(await x.commit());
          if (sealed) keep.lastSeen = now;
          else if (now - keep.lastSeen >= TOUCH) keep.lastSeen = now;
        } else await core.revokeUser(u);
        endAll(u, keep);
        tick();
        break;
      }
      case "raceLogin": {
        const u = USERS[s.u]!;
        const m = bs[s.b]!;
        const [login] = await Promise.allSettled([
          request(core, m.jar, (x) => x.bindUser(u)),
          core.revokeUser(u),
        ]);
        // A login that began before the revocation ended with it, or failed and left the browser as it was.
        if (login.status === "fulfilled") m.user = undefined;
        endAll(u);
        tick();
        break;
      }
      case "inFlight": {
        const m = bs[s.b]!;
        const u = live(m);
        if (u === undefined) break;
        const x = core.open({ cookieHeader: m.jar.header(), secure: true });
        expect(await x.userId()).toBe(u);
        await core.revokeUser(u);
        tick();
        x.set("late", true);
        m.jar.apply(await x.commit());
        endAll(u);
        break;
      }
    }
    // The checks: loads only (no commit), so they change nothing the model tracks.
    for (const m of bs) {
      const x = core.open({ cookieHeader: m.jar.header(), secure: true });
      expect(await x.userId()).toBe(live(m));
    }
    if (core.listUserSessions)
      for (const u of USERS) {
        const listed = (await core.listUserSessions(u)).map((l) => l.handle).sort();
        const expected = bs
          .filter((m) => live(m) === u)
          .map(handleOf)
          .sort();
        expect(listed).toEqual(expected);
      }
  }
}

function describeModel(name: string, makeStore: () => Promise<KvStore> | KvStore, runs: number): void {
  describe(`revocation model on ${name}`, () => {
    beforeEach(() => vi.useFakeTimers({ toFake: ["Date"] }));
    afterEach(() => vi.useRealTimers());
    const timeouts = { idleTimeoutMs: IDLE, absoluteTimeoutMs: ABS, touchIntervalMs: TOUCH };

    it("server mode: every live session is listed; nothing revoked can be loaded or committed", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), async (steps) => {
          const store = await makeStore();
          try {
            await runModel(createSessions({ store, secrets: [SECRET], ...timeouts }), steps, false);
          } finally {
            await store.clear();
            await store.close();
          }
        }),
        { numRuns: runs },
      );
    });

    it("sealed mode: nothing revoked can be loaded or committed", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), async (steps) => {
          const store = await makeStore();
          try {
            const core = createSealedSessions({ secrets: [SECRET], revocationStore: store, ...timeouts });
            await runModel(core, steps, true);
          } finally {
            await store.clear();
            await store.close();
          }
        }),
        { numRuns: runs },
      );
    });
  });
}

describeModel("MemoryStore", () => createMemoryStore(), 60);

const dir = mkdtempSync(join(tmpdir(), "kvsession-model-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
describeModel("SQLite (file)", () => createSqliteStore({ path: join(dir, `m${files++}.db`) }), 25);

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const ping = async () => {
  const c = createClient({ url, socket: { reconnectStrategy: false } });
  await c.connect();
  await c.ping();
  await c.close();
};
if (await requireService(`Redis at ${url}`, ping)) {
  const run = randomBytes(6).toString("hex");
  let n = 0;
  describeModel("Redis", () => createRedisStore({ url, namespace: `kvmodel:${run}:${n++}:` }), 20);
}
