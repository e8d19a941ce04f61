import { KvTimeoutError } from "@kvsession/kv";

/**
 * Whether to send a failed command again, and after how many ms (undefined: fail now);
 * `firstFailure` is when the command first failed (Date.now()).
 */
export type Resend = (error: unknown, firstFailure: number) => number | undefined;

export interface Watchdog {
  /**
   * Resolves with map(value), rejects with mapError(error), or with
   * KvTimeoutError once the command has been unanswered for the timeout.
   * One promise per command, the one handed to the caller anyway. Given
   * `resend`, a command the watchdog's `again` policy calls retryable is sent
   * again with it, within the same deadline.
   */
  track<T, R>(
    op: Promise<T>,
    map: (v: T) => R,
    mapError: (e: unknown) => never,
    resend?: () => Promise<T>,
  ): Promise<R>;
  /** The longest-waiting command still unanswered (an opaque token, the same while it waits), if any. */
  oldest(): object | undefined;
  stop(): void;
}

interface Pending {
  start: number;
  reject: (e: unknown) => void;
  /** Neighbours in start order; both undefined once answered or timed out (and for a lone one). */
  prev: Pending | undefined;
  next: Pending | undefined;
  settled: boolean;
  /** When the command first failed with a retryable error (0: never). */
  failedAt: number;
}

function attempt<T>(send: () => Promise<T>): Promise<T> {
  try {
    return send();
  } catch (e) {
    return Promise.reject(e);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Bounds how long a caller waits on a server that accepts the connection but
 * never answers (stopped, swapping, stuck in a script). One shared interval and
 * a list in start order replace a timer per command, which cost the client
 * most of its throughput here. The command itself stays queued in node-redis;
 * only the caller stops waiting for it (in a Cluster the topology watch drops a
 * stalled master's connection, and what is queued on it, once a replica has
 * replaced it). `timeoutMs` 0 tracks nothing.
 *
 * The list is linked through the entries rather than kept in a `Set`: a `Set`
 * that every command enters and leaves made the engine run full collections under load.
 */
export function createWatchdog(timeoutMs: number, where: string, again?: Resend): Watchdog {
  if (timeoutMs <= 0) {
    const retrying = <T>(op: Promise<T>, resend: () => Promise<T>, policy: Resend): Promise<T> => {
      let first = 0;
      const failed = (e: unknown): Promise<T> => {
        if (first === 0) first = Date.now();
        const delay = policy(e, first);
        if (delay === undefined) return Promise.reject(e);
        return sleep(delay).then(() => attempt(resend).catch(failed));
      };
      return op.catch(failed);
    };
    return {
      track: (op, map, mapError, resend) =>
        (resend === undefined || again === undefined ? op : retrying(op, resend, again)).then(map, mapError),
      oldest: () => undefined,
      stop() {},
    };
  }
  let head: Pending | undefined;
  let tail: Pending | undefined;
  /** Takes an entry out of the list; false if it already was (answered, or timed out). */
  function unlink(p: Pending): boolean {
    if (p.settled) return false;
    p.settled = true;
    if (p.prev === undefined) head = p.next;
    else p.prev.next = p.next;
    if (p.next === undefined) tail = p.prev;
    else p.next.prev = p.prev;
    p.prev = undefined;
    p.next = undefined;
    return true;
  }
  const tick = Math.max(5, Math.floor(timeoutMs / 4));
  const timer = setInterval(() => {
    // Each command is stamped when it is sent, so it times out after timeoutMs to timeoutMs + tick (more
    // only when the event loop runs this late), never before: a stamp taken from a clock this interval
    // advanced would be older than the command whenever the loop is busy, and time it out early.
    const cutoff = Date.now() - timeoutMs;
    while (head !== undefined && head.start <= cutoff) {
      const p = head;
      unlink(p);
      p.reject(
        new KvTimeoutError(
          `Redis at ${where} did not answer within ${timeoutMs} ms; check that the server is running and not overloaded`,
        ),
      );
    }
  }, tick);
  timer.unref();
  return {
    track<T, R>(
      op: Promise<T>,
      map: (v: T) => R,
      mapError: (e: unknown) => never,
      resend?: () => Promise<T>,
    ): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        const p: Pending = {
          start: Date.now(),
          reject,
          prev: tail,
          next: undefined,
          settled: false,
          failedAt: 0,
        };
        if (tail === undefined) head = p;
        else tail.next = p;
        tail = p;
        const answered = (v: T) => {
          if (!unlink(p)) return;
          try {
            resolve(map(v));
          } catch (e) {
            reject(e);
          }
        };
        const failed = (e: unknown) => {
          if (p.settled) return;
          if (resend !== undefined && again !== undefined) {
            if (p.failedAt === 0) p.failedAt = Date.now();
            const delay = again(e, p.failedAt);
            if (delay !== undefined) {
              setTimeout(() => {
                if (!p.settled) attempt(resend).then(answered, failed);
              }, delay);
              return;
            }
          }
          if (!unlink(p)) return;
          try {
            mapError(e);
          } catch (mapped) {
            reject(mapped);
          }
        };
        op.then(answered, failed);
      });
    },
    oldest: () => head,
    stop() {
      clearInterval(timer);
    },
  };
}
