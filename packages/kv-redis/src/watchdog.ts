import { KvTimeoutError } from "@kvsession/kv";

export interface Watchdog {
  guard<T>(op: Promise<T>): Promise<T>;
  stop(): void;
}

interface Pending {
  start: number;
  reject: (e: unknown) => void;
}

/**
 * Bounds how long a caller waits on a server that accepts the connection but
 * never answers (stopped, swapping, stuck in a script). One shared interval
 * and an insertion-ordered set replace a timer per command, which cost
 * node-redis v6 most of its throughput here. The command itself stays queued
 * in node-redis; only the caller stops waiting for it.
 */
export function createWatchdog(timeoutMs: number, where: string): Watchdog {
  const pending = new Set<Pending>();
  const timer = setInterval(
    () => {
      const cutoff = Date.now() - timeoutMs;
      for (const p of pending) {
        if (p.start > cutoff) break;
        pending.delete(p);
        p.reject(
          new KvTimeoutError(
            `Redis at ${where} did not answer within ${timeoutMs} ms; check that the server is running and not overloaded`,
          ),
        );
      }
    },
    Math.max(5, Math.floor(timeoutMs / 4)),
  );
  timer.unref();
  return {
    guard(op) {
      return new Promise((resolve, reject) => {
        const p: Pending = { start: Date.now(), reject };
        pending.add(p);
        op.then(
          (v) => {
            pending.delete(p);
            resolve(v);
          },
          (e) => {
            pending.delete(p);
            reject(e);
          },
        );
      });
    },
    stop() {
      clearInterval(timer);
    },
  };
}
