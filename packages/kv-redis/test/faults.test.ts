import {
  KvConnectionError,
  KvCorruptError,
  type KvError,
  KvPermissionError,
  KvStorageFullError,
  type KvStore,
  KvTimeoutError,
} from "@kvsession/kv";
import { freePort, type RedisServer, startRedis } from "@kvsession/test-helpers";
import { createClient } from "redis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRedisStore } from "../src/index.js";

// Real faults on a redis-server of this file's own: killed, stopped, full, locked down.
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries op until it succeeds; bounded in count, so a store that never recovers fails the test. */
async function eventually<T>(op: () => Promise<T>, attempts = 100): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await op();
    } catch (e) {
      last = e;
      await sleep(50);
    }
  }
  throw last;
}

const isOutage = (e: unknown) => e instanceof KvConnectionError || e instanceof KvTimeoutError;

let server: RedisServer;
let store: KvStore | undefined;
beforeAll(async () => {
  server = await startRedis();
});
afterEach(async () => {
  if (server.process.signalCode === "SIGSTOP") server.process.kill("SIGCONT");
  await store?.close();
  store = undefined;
});
afterAll(async () => {
  await server?.stop();
});

describe("kv-redis faults on a real server", () => {
  it("fails in-flight and new operations with typed errors when the server dies, then recovers by itself", async () => {
    store = createRedisStore({ url: server.url, namespace: "f1:", connectWaitMs: 200 });
    await store.set("k", enc("before"));
    // A writer running while the process is killed: its next operation must reject, typed.
    let stopped: unknown;
    const writer = (async () => {
      for (let i = 0; i < 1_000_000 && stopped === undefined; i++) {
        await store?.set(`load${i % 100}`, enc("x")).catch((e) => {
          stopped = e;
        });
      }
    })();
    await sleep(20);
    await server.kill();
    await writer;
    expect(isOutage(stopped), String(stopped)).toBe(true);
    // Operations issued while it is down: rejected, typed, not queued forever.
    const errs = await Promise.all(
      [store.get("k"), store.set("k", enc("x")), store.listKeys()].map((p) => p.catch((e) => e)),
    );
    for (const e of errs) {
      expect(e).toBeInstanceOf(KvConnectionError);
      expect((e as KvError).message).toMatch(/unreachable.*retry/);
    }
    await server.start();
    // The same store, not recreated, works again (data is gone: the server runs without persistence).
    await eventually(() => store!.set("k", enc("after")));
    expect(dec(await store.get("k"))).toBe("after");
    // Scripts were flushed by the restart: EVALSHA falls back to EVAL.
    const { version } = await store.getVersioned("k");
    expect(await store.compareAndSet("k", version, enc("cas"))).toEqual(expect.any(String));
  });

  it("fails with KvTimeoutError when the server stops answering, and recovers when it resumes", async () => {
    store = createRedisStore({ url: server.url, namespace: "f2:", commandTimeoutMs: 300 });
    await eventually(() => store!.set("k", enc("v"))); // only the stopped server's answer must time out
    server.process.kill("SIGSTOP");
    await expect(store.get("k")).rejects.toBeInstanceOf(KvTimeoutError);
    server.process.kill("SIGCONT");
    expect(dec(await eventually(() => store!.get("k")))).toBe("v");
  });

  it("fails with KvConnectionError when no server is there at all, and connects once one starts", async () => {
    const port = await freePort();
    store = createRedisStore({ url: `redis://127.0.0.1:${port}`, namespace: "f3:", connectWaitMs: 100 });
    await expect(store.get("k")).rejects.toBeInstanceOf(KvConnectionError);
    const late = await startRedis([], port);
    try {
      await eventually(() => store!.set("k", enc("late")));
      expect(dec(await store.get("k"))).toBe("late");
    } finally {
      await store.close();
      await late.stop();
    }
  });

  it("maps out-of-memory to KvStorageFullError and keeps the old value", async () => {
    const small = await startRedis(["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    const s = createRedisStore({ url: small.url, namespace: "f4:" });
    try {
      await s.set("keep", enc("old"));
      let error: unknown;
      for (let i = 0; i < 100 && error === undefined; i++) {
        await s.set(`fill${i}`, new Uint8Array(256 * 1024)).catch((e) => {
          error = e;
        });
      }
      expect(error).toBeInstanceOf(KvStorageFullError);
      expect((error as KvError).message).toMatch(/maxmemory/);
      expect(dec(await s.get("keep"))).toBe("old");
      // Concurrent writes share a transaction, which the server refuses whole: each still fails typed,
      // and none of them changed what was stored. (A limit below what is held refuses every write; at
      // the edge, memory freed by a refused command lets the next small one through.)
      const admin = createClient({ url: small.url });
      await admin.connect();
      await admin.configSet("maxmemory", "1mb");
      await admin.configResetStat();
      const batch = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => s.set(i === 4 ? "keep" : `more${i}`, new Uint8Array(64 * 1024))),
      );
      const stats = await admin.info("commandstats");
      await admin.close();
      // The first went out alone; the other seven as commands of at most 160 KiB (three transactions of
      // two, the last one by itself), which the server refused, then one by one.
      expect(stats).toMatch(/cmdstat_exec:calls=3,.*failed_calls=3/);
      expect(stats).toMatch(/cmdstat_evalsha:calls=8,/);
      for (const r of batch) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(KvStorageFullError);
      }
      expect(dec(await s.get("keep"))).toBe("old");
    } finally {
      await s.close();
      await small.stop();
    }
  });

  it("maps an ACL refusal to KvPermissionError", async () => {
    const admin = createClient({ url: server.url });
    admin.on("error", () => {});
    await eventually(() => (admin.isOpen ? Promise.resolve() : admin.connect().then(() => undefined)));
    await admin.sendCommand(["ACL", "SETUSER", "narrow", "on", ">pw", "~other:*", "+@all"]);
    store = createRedisStore({ url: `redis://narrow:pw@127.0.0.1:${server.port}`, namespace: "f5:" });
    const err = await store.set("k", enc("v")).catch((e) => e);
    expect(err).toBeInstanceOf(KvPermissionError);
    expect((err as Error).message).not.toContain(":pw@");
    await admin.sendCommand(["ACL", "DELUSER", "narrow"]);
    admin.destroy();
  });

  it("maps a foreign non-string value in the namespace to KvCorruptError", async () => {
    store = createRedisStore({ url: server.url, namespace: "f6:" });
    const other = createClient({ url: server.url });
    other.on("error", () => {});
    await other.connect();
    await other.lPush("f6:list", "x");
    other.destroy();
    await expect(store.get("list")).rejects.toBeInstanceOf(KvCorruptError);
    await store.clear();
  });
});
