// Serialised mode on every store: the model-based interleaving test, then real processes on each
// store two processes can share (a lease holder in a child process SIGKILLed or SIGSTOPped
// mid-request), and a store's server killed while a lease is held.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { requireService } from "@kvsession/kv-test-suite";
import {
  pgBinDir,
  pingRedis,
  spawnFixture,
  startCluster,
  startPrivateServer,
  startRedis,
  type TestCluster,
} from "@kvsession/test-helpers";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createSessions } from "../src/index.js";
import { openStore, type StoreSpec } from "./fixtures/stores.js";
import { increment, readN, SECRET, seeded } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "kvsession-processes-"));
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;
const run = randomBytes(6).toString("hex");

/**
 * Several "processes" (independent cores on one store: they meet only through the store) run
 * concurrent read-modify-write requests on one session; every acknowledged increment must stay.
 */
function describeSerialized(name: string, makeStore: () => KvStore | Promise<KvStore>, runs: number) {
  describe(`serialised mode on ${name}`, () => {
    it("concurrent read-modify-write requests from several processes lose nothing", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ proc: fc.nat(2), pause: fc.nat(3) }), { minLength: 2, maxLength: 8 }),
          async (reqs) => {
            const store = await makeStore();
            try {
              const procs = [0, 1, 2].map(() =>
                createSessions({ store, secrets: [SECRET], serialize: { leaseMs: 5_000, waitMs: 20_000 } }),
              );
              const cookie = await seeded(procs[0]!);
              const results = await Promise.allSettled(
                reqs.map((r) => increment(procs[r.proc]!, cookie, r.pause)),
              );
              const acknowledged = results.filter((r) => r.status === "fulfilled").length;
              expect(results.filter((r) => r.status === "rejected")).toEqual([]);
              expect(await readN(procs[0]!, cookie)).toBe(acknowledged);
            } finally {
              await store.clear();
              await store.close();
            }
          },
        ),
        { numRuns: runs },
      );
    });
  });
}

/** A store two processes can share; `spec()` gives each test a place of its own in it. */
interface Shared {
  name: string;
  spec(): StoreSpec;
  /** fast-check runs of the model-based test. */
  runs: number;
}

describeSerialized("MemoryStore", () => createMemoryStore(), 30);

const shared: Shared[] = [
  { name: "SQLite (file)", spec: () => ({ kind: "sqlite", path: join(dir, `s${n++}.db`) }), runs: 15 },
  { name: "fs", spec: () => ({ kind: "fs", dir: join(dir, `fs${n++}`) }), runs: 10 },
];

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
if (await requireService(`Redis at ${redisUrl}`, () => pingRedis(redisUrl))) {
  shared.push({
    name: "Redis",
    spec: () => ({ kind: "redis", url: redisUrl, namespace: `kvproc:${run}:${n++}:` }),
    runs: 15,
  });
}

let cluster: TestCluster | undefined;
if (
  await requireService(
    "a Redis Cluster of this file's own (redis-server, redis-cli)",
    async () => {
      cluster = await startCluster();
      cleanups.push(() => cluster!.stop());
    },
    60_000,
  )
) {
  const url = cluster!.nodes[0]!.url;
  shared.push({
    name: "Redis Cluster",
    spec: () => ({ kind: "cluster", url, namespace: `kvproc:${run}:${n++}:` }),
    runs: 10,
  });
}

const pgUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const pgTable = "kvsession_processes_test";
const pingPg = async () => {
  const probe = await openStore({ kind: "postgres", url: pgUrl, table: pgTable });
  await probe.clear();
  await probe.close();
};
if (await requireService(`PostgreSQL at ${pgUrl}`, pingPg)) {
  // One table, emptied after the file, so repeated runs leave nothing behind but it.
  cleanups.push(async () => {
    const s = await openStore({ kind: "postgres", url: pgUrl, table: pgTable });
    await s.clear();
    await s.close();
  });
  shared.push({
    name: "PostgreSQL",
    spec: () => ({ kind: "postgres", url: pgUrl, table: pgTable }),
    runs: 10,
  });
}

/** A lease holder in a child process that opens the store `spec` describes. */
function startHolder(spec: StoreSpec, cookie: string, leaseMs: number) {
  const child = spawnFixture(
    join(import.meta.dirname, "fixtures", "lease-holder.ts"),
    [JSON.stringify(spec), cookie, String(leaseMs)],
    ["pipe", "pipe", "inherit"],
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode !== "SIGKILL") {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
    }
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => (await lines.next()).value as string;
  return { child, next };
}

/**
 * A seeded session on the place `spec` names, held (300 ms leases) by a request in a child process;
 * this process's own sessions on the same store wait for it.
 */
async function heldElsewhere(spec: StoreSpec) {
  const store = await openStore(spec);
  cleanups.push(() => store.close());
  const sessions = createSessions({ store, secrets: [SECRET], serialize: { leaseMs: 300, waitMs: 10_000 } });
  const cookie = await seeded(sessions);
  const holder = startHolder(spec, cookie, 300);
  expect(await holder.next()).toBe("held 0");
  return { sessions, cookie, holder };
}

for (const s of shared) {
  describeSerialized(s.name, () => openStore(s.spec()), s.runs);
  describe(`serialised mode across processes on ${s.name}`, () => {
    it("a holder killed mid-request is replaced once its lease runs out", async () => {
      const { sessions, cookie, holder } = await heldElsewhere(s.spec());
      holder.child.kill("SIGKILL");
      // Waits for the dead holder's lease to run out, then reads 0 and writes 1.
      await increment(sessions, cookie, 0);
      expect(await readN(sessions, cookie)).toBe(1);
    });

    it("a paused holder's late commit is refused by the fence", async () => {
      const { sessions, cookie, holder } = await heldElsewhere(s.spec());
      holder.child.kill("SIGSTOP");
      try {
        // Waits until the stopped holder's lease has run out, then reads 0 and writes 1.
        await increment(sessions, cookie, 0);
      } finally {
        holder.child.kill("SIGCONT");
      }
      holder.child.stdin!.write("commit\n");
      expect(await holder.next()).toBe("error SESSION_CONFLICT");
      expect(await readN(sessions, cookie)).toBe(1);
    });
  });
}

/**
 * The store goes down while a request holds the lease (`down` is given that process's store): the
 * request's commit fails with a typed error, and once the store is back (`up`) another process takes
 * the session when the lease runs out.
 */
async function outage(spec: StoreSpec, down: (store: KvStore) => Promise<void>, up: () => Promise<void>) {
  const opts = { secrets: [SECRET], serialize: { leaseMs: 200, waitMs: 10_000 } };
  const a = await openStore(spec, 1_000);
  cleanups.push(() => a.close());
  const procA = createSessions({ store: a, ...opts });
  const cookie = await seeded(procA);
  const held = procA.open({ cookieHeader: cookie, secure: true });
  expect(await held.get("n")).toBe(0);
  await down(a);
  held.set("n", 1);
  await expect(held.commit()).rejects.toMatchObject({ code: "SESSION_STORE" });
  await up();
  const b = await openStore(spec);
  cleanups.push(() => b.close());
  const procB = createSessions({ store: b, ...opts });
  await increment(procB, cookie, 0);
  expect(await readN(procB, cookie)).toBe(1);
}

describe("serialised mode: the store goes down while a lease is held", () => {
  it("SQLite: the holder's store is closed under it", async () => {
    await outage(
      { kind: "sqlite", path: join(dir, `outage${n++}.db`) },
      (store) => store.close(),
      async () => {},
    );
  });

  it("Redis: the server is killed, then started again on its append-only file", async () => {
    const server = await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
    cleanups.push(() => server.stop());
    await outage(
      { kind: "redis", url: server.url, namespace: "kvoutage:" },
      () => server.kill(),
      () => server.start(),
    );
  });
});

if (
  await requireService(
    "PostgreSQL server binaries (initdb, pg_ctl)",
    async () => pgBinDir() ?? Promise.reject(new Error("not installed")),
  )
) {
  describe("serialised mode: the PostgreSQL server goes down while a lease is held", () => {
    it("the server is stopped at once (as in a crash), then started again", async () => {
      const server = await startPrivateServer();
      cleanups.push(() => server.destroy());
      await outage(
        { kind: "postgres", url: server.url, table: "kvsession_outage" },
        () => server.stop("immediate"),
        () => server.start(),
      );
    });
  });
}
