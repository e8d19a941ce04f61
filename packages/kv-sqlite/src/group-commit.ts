import type { KvError } from "@kvsession/kv";
import type Database from "better-sqlite3";

export interface WriteQueue {
  /** Queues a plain write; resolves once the transaction holding it has committed. */
  push(key: string, value: Uint8Array, expiresAt: number | undefined): Promise<void>;
  /** Commits whatever is queued, now. Every other statement calls this first, so writes keep their order. */
  flush(): void;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

const busy = (error: unknown) => /^SQLITE_(BUSY|LOCKED)/.test(String((error as { code?: unknown })?.code));

/**
 * Group commit for plain `set`s: writes issued in the same tick of the event
 * loop (64 requests in flight…) go into one transaction, so they share one WAL
 * commit instead of paying one each. A write is acknowledged only after its
 * transaction committed, so durability is unchanged; a lone write is committed
 * one microtask later, as its own transaction.
 */
export function writeQueue(
  db: Database.Database,
  set: Database.Statement,
  fail: (op: string, error: unknown) => KvError,
): WriteQueue {
  let keys: string[] = [];
  let values: Uint8Array[] = [];
  let deadlines: Array<number | null> = [];
  let waiters: Waiter[] = [];
  let scheduled = false;

  const commit = db.transaction((ks: string[], vs: Uint8Array[], ds: Array<number | null>) => {
    for (let i = 0; i < ks.length; i++) set.run(ks[i], vs[i], ds[i]);
  });

  function flush(): void {
    scheduled = false;
    if (waiters.length === 0) return;
    const ks = keys;
    const vs = values;
    const ds = deadlines;
    const ws = waiters;
    keys = [];
    values = [];
    deadlines = [];
    waiters = [];
    try {
      commit.immediate(ks, vs, ds);
      for (const w of ws) w.resolve();
    } catch (error) {
      if (ws.length === 1 || busy(error)) {
        for (const w of ws) w.reject(fail("set", error));
        return;
      }
      // One bad write (a value over SQLite's limit…) must not fail the others: retry one by one.
      for (let i = 0; i < ks.length; i++) {
        try {
          set.run(ks[i], vs[i], ds[i]);
          ws[i]!.resolve();
        } catch (e) {
          ws[i]!.reject(fail("set", e));
        }
      }
    }
  }

  return {
    push(key, value, expiresAt) {
      return new Promise<void>((resolve, reject) => {
        keys.push(key);
        // Held until the commit: copied, so the caller may reuse its buffer at once.
        values.push(new Uint8Array(value));
        deadlines.push(expiresAt ?? null);
        waiters.push({ resolve, reject });
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(flush);
        }
      });
    },
    flush,
  };
}
