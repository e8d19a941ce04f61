import { createMemoryStore, KvConnectionError, type KvStore } from "@kvsession/kv";
import { type Cleanup, tempSqliteStore } from "./cleanups.js";
import { wrapStore } from "./wrap-store.js";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * What an adapter's serialised-mode tests watch in their read-modify-write handlers: how many
 * handlers were between their read and their write at once, a barrier that holds `n` requests
 * there (the loss the mode prevents, shown), and a gate a test opens by hand while a request holds
 * its session.
 *
 * @example
 * const probe = rmwProbe(8);
 * app.post("/rmw", async (req) => {
 *   const n = req.session.n ?? 0;
 *   return probe.between(probe.barrier, () => (req.session.n = n + 1));
 * });
 */
export function rmwProbe(n: number) {
  let between = 0;
  let most = 0;
  let reads = 0;
  const allRead = deferred();
  const entered = deferred();
  const opened = deferred();
  return {
    /** The most handlers seen between read and write at once. */
    most: () => most,
    /** Waits with `wait`, then writes: call it after the handler's read. */
    async between<T>(wait: () => Promise<void>, write: () => T): Promise<T> {
      between++;
      most = Math.max(most, between);
      await wait();
      const out = write();
      between--;
      return out;
    },
    /** Holds each request until `n` of them have read. */
    async barrier(): Promise<void> {
      if (++reads === n) allRead.resolve();
      await allRead.promise;
    },
    /** The handler calls `entered()` and awaits `opened`; the test awaits `inside`, then calls `open()`. */
    hold: { entered: entered.resolve, inside: entered.promise, open: opened.resolve, opened: opened.promise },
  };
}

/** The stores an adapter's serialised-mode tests run on: the memory store, and SQLite (cleaned up by `cleanups`). */
export function rmwStores(cleanups: Cleanup[], name: string): Array<[string, () => KvStore]> {
  return [
    ["the memory store", () => createMemoryStore()],
    ["SQLite", () => tempSqliteStore(cleanups, name)],
  ];
}

/** A memory store whose compare-and-set writes fail with KvConnectionError while `failing.on` is true. */
export function storeWithFailingWrites(): { store: KvStore; failing: { on: boolean } } {
  const failing = { on: false };
  const store = wrapStore(createMemoryStore(), (method, call) =>
    failing.on && method === "compareAndSet"
      ? Promise.reject(new KvConnectionError("the store refused a write"))
      : call(),
  );
  return { store, failing };
}
