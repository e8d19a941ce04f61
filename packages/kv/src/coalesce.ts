import { KvConnectionError, KvTimeoutError } from "./errors.js";

/** One kind of single-key command that many callers can share one Redis command for. */
export interface BatchKind<A, R> {
  /** The command for one caller alone (`GET`): a lone operation pays nothing for batching. */
  one(arg: A): Promise<R>;
  /** The command for several (`MGET`, a looping script): one result per argument, in order. */
  many(args: A[]): Promise<R[]>;
  /** Bytes an operation adds to its command (a write's value), counted against the coalescer's `maxBytes`. */
  bytes?(arg: A): number;
}

interface Queued {
  kind: BatchKind<unknown, unknown>;
  arg: unknown;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export interface Coalescer {
  /** Queues an operation; it is sent with the others queued in this turn of the event loop. */
  add<A, R>(kind: BatchKind<A, R>, arg: A): Promise<R>;
  /** Sends everything queued now; called before any command that does not queue, to keep issue order. */
  flush(): void;
}

/**
 * For drivers on a network engine: gathers the single-key operations issued in
 * one turn of the event loop — 64 callers awaiting `get`, or the session reads
 * of every request that arrived in one poll — into one command per run of the
 * same kind: one `MGET` (Redis) or one `unnest($1)` statement (PostgreSQL) instead
 * of 64 single ones. Each command costs the client and the server a fixed few
 * microseconds whatever its size, which is where a client spends most of its
 * time at high concurrency.
 *
 * An operation issued while no command is on the wire and none is queued
 * goes out at once as its own single command (one caller at a time pays
 * nothing) — unless two or more commands were answered in this turn of the
 * event loop: then the callers they woke are issuing their next operations
 * right now, and the first of those going out alone would cost each round of
 * callers in lockstep an extra socket write and server wake-up. Otherwise it queues until `setImmediate`, which runs right after
 * the poll phase that issued it. Order is kept: commands go out in the order
 * their operations were issued (consecutive operations of one kind share a
 * command), provided the driver calls `flush()` before every command that
 * does not queue.
 *
 * Batches hold at most `maxBatch` operations (16 by default): a flush of 64
 * then leaves as four pipelined commands, so the client handles the first
 * reply while the server still runs the others (one huge batch leaves both
 * idle in turn). For kinds that say how big an operation is
 * (`bytes`), a batch also ends before its operations pass `maxBytes` (no limit
 * by default; an operation bigger than that goes alone): the server starts on
 * a command only once all of it has arrived, so big values want fewer per
 * command than small ones.
 *
 * A batch that fails with a connection or timeout error fails all of its
 * operations (each would have failed alike); any other error retries its
 * operations one by one, so one bad key never fails its neighbours.
 *
 * @example
 * ```ts
 * const batches = createCoalescer();
 * const getKind = { one: (k) => client.get(k), many: (ks) => client.mGet(ks) };
 * const get = (key: string) => batches.add(getKind, key);
 * ```
 */
export function createCoalescer(maxBatch = 16, maxBytes = Number.POSITIVE_INFINITY): Coalescer {
  let queue: Queued[] = [];
  let scheduled = false;
  /** Commands sent and not yet answered. */
  let inFlight = 0;
  /** Commands answered in this turn of the event loop (a setImmediate starts the count again). */
  let answered = 0;
  const nextTurn = () => {
    answered = 0;
  };
  const landed = () => {
    inFlight--;
    if (answered++ === 0) setImmediate(nextTurn);
  };
  /** Counts a command just sent as on the wire until it is answered. */
  function sent<T>(p: Promise<T>): Promise<T> {
    inFlight++;
    p.then(landed, landed);
    return p;
  }

  function settle(items: Queued[], kind: BatchKind<unknown, unknown>): void {
    if (items.length === 1) {
      const it = items[0] as Queued;
      sent(kind.one(it.arg)).then(it.resolve, it.reject);
      return;
    }
    const p = sent(kind.many(items.map((it) => it.arg)));
    p.then(
      (results) => {
        for (let i = 0; i < items.length; i++) (items[i] as Queued).resolve(results[i]);
      },
      (err: unknown) => {
        if (err instanceof KvConnectionError || err instanceof KvTimeoutError) {
          for (const it of items) it.reject(err);
          return;
        }
        for (const it of items) kind.one(it.arg).then(it.resolve, it.reject);
      },
    );
  }

  const onImmediate = () => {
    scheduled = false;
    flush();
  };
  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(onImmediate);
  }

  function flush(): void {
    if (queue.length === 0) return;
    const q = queue;
    queue = [];
    // The next turn's flush is queued before the commands below make the client queue its own write
    // (node-redis writes at setImmediate too), so what the next turn issues leaves in that same write
    // instead of a write of its own one turn later.
    schedule();
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < q.length; i++) {
      const it = q[i] as Queued;
      const kind = (q[start] as Queued).kind;
      const size = it.kind.bytes === undefined ? 0 : it.kind.bytes(it.arg);
      if (i > start && (it.kind !== kind || i - start >= maxBatch || bytes + size > maxBytes)) {
        settle(q.slice(start, i), kind);
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    settle(q.slice(start), (q[start] as Queued).kind);
  }

  return {
    add<A, R>(kind: BatchKind<A, R>, arg: A): Promise<R> {
      // Nothing waiting and nothing on the wire: no one to share a command with, so no wait. Unless
      // several commands were answered in this turn: their callers are issuing their next ones now.
      if (inFlight === 0 && queue.length === 0 && answered < 2) return sent(kind.one(arg));
      return new Promise<R>((resolve, reject) => {
        queue.push({
          kind: kind as BatchKind<unknown, unknown>,
          arg,
          resolve: resolve as (v: unknown) => void,
          reject,
        });
        schedule();
      });
    },
    flush,
  };
}
