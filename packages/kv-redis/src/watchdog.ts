import { KvTimeoutError } from "@kvsession/kv";

export interface Watchdog {
  /**
   * Resolves with map(value), rejects with mapError(error), or with
   * KvTimeoutError once the command has been unanswered for the timeout.
   * One promise per command, the one handed to the caller anyway.
   */
  track<T, R>(op: Promise<T>, map: (v: T) => R, mapError: (e: unknown) => never): Promise<R>;
  stop(): void;
}

interface Pending {
  start: number;
  reject: (e: unknown) => void;
}

/**
 * Bounds how long a caller waits on a server that accepts the connection but
 * never answers (stopped, swapping, stuck in a script). One shared interval,
 * a coarse clock it advances, and an insertion-ordered set replace a timer per
 * command, which cost node-redis v6 most of its throughput here. The command
 * itself stays queued in node-redis; only the caller stops waiting for it.
 * `timeoutMs` 0 tracks nothing.
 */
export function createWatchdog(timeoutMs: number, where: string): Watchdog {
  if (timeoutMs <= 0) {
    return {
      track: (op, map, mapError) => op.then(map, mapError),
      stop() {},
    };
  }
  const pending = new Set<Pending>();
  let clock = Date.now();
  const tick = Math.max(5, Math.floor(timeoutMs / 4));
  const timer = setInterval(() => {
    clock = Date.now();
    // Stamps lag the real clock by up to one tick: a command times out after timeoutMs to timeoutMs + tick.
    const cutoff = clock - timeoutMs;
    for (const p of pending) {
      if (p.start > cutoff) break;
      pending.delete(p);
      p.reject(
        new KvTimeoutError(
          `Redis at ${where} did not answer within ${timeoutMs} ms; check that the server is running and not overloaded`,
        ),
      );
    }
  }, tick);
  timer.unref();
  return {
    track(op, map, mapError) {
      return new Promise((resolve, reject) => {
        const p: Pending = { start: clock, reject };
        pending.add(p);
        op.then(
          (v) => {
            if (!pending.delete(p)) return;
            try {
              resolve(map(v));
            } catch (e) {
              reject(e);
            }
          },
          (e) => {
            if (!pending.delete(p)) return;
            try {
              mapError(e);
            } catch (mapped) {
              reject(mapped);
            }
          },
        );
      });
    },
    stop() {
      clearInterval(timer);
    },
  };
}
