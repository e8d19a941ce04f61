import { KvConnectionError, KvTimeoutError } from "@kvsession/kv";
import type { Commands, Connection } from "./connection.js";

/** What a write sends, on the connection given; `source` sends scripts with EVAL (after NOSCRIPT). */
export type Send<T> = (c: Commands, source?: boolean) => Promise<T>;

/** How long a master found short of replicas gets writes refused before it is asked again (ROLE). */
const RECHECK_MS = 250;

interface Gate {
  /** A `WAIT` queued for the writes sent on this connection in this turn, not yet sent itself. */
  pending: Promise<number> | undefined;
  /** Until when writes are refused without being sent (0: open). */
  shortUntil: number;
}

const isNoScript = (e: unknown) => e instanceof Error && e.message.startsWith("NOSCRIPT");

/**
 * Writes acknowledged only once `replicas` replicas have them (the store's `wait` option).
 *
 * The write and a `WAIT replicas timeoutMs` leave together on the connection of the key's master
 * (in a Cluster that node's own connection, not the cluster's routing, which could send the two
 * to different nodes), so the `WAIT` counts exactly the writes before it on that connection. The
 * writes sent on one connection in one turn of the event loop share one `WAIT`, sent after all of
 * them: a `WAIT` holds its connection until the replicas answer, and one per write would hold it
 * once per write while a replica is missing.
 *
 * A master whose `WAIT` came back short (its replica died, or the master itself was just promoted
 * and has none yet) gets its writes refused without sending them, so they neither block its
 * connection nor apply what cannot be made durable, until `ROLE` shows enough replicas again.
 */
export function replicatedWrites(
  conn: Connection,
  dataKey: (key: string) => string,
  replicas: number,
  waitMs: number,
): <T>(key: string, send: Send<T>) => Promise<T> {
  const gates = new WeakMap<Commands, Gate>();
  const gateOf = (c: Commands): Gate => {
    let g = gates.get(c);
    if (g === undefined) {
      g = { pending: undefined, shortUntil: 0 };
      gates.set(c, g);
    }
    return g;
  };

  /** The `WAIT` for the writes just queued on `c`: queued once, after every write of this turn. */
  function waitAfter(c: Commands, g: Gate): Promise<number> {
    g.pending ??= new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => {
      g.pending = undefined;
      return conn.waitReplicas(c, replicas, waitMs);
    });
    return g.pending;
  }

  async function open(c: Commands, g: Gate): Promise<void> {
    if (g.shortUntil === 0) return;
    if (Date.now() >= g.shortUntil) {
      g.shortUntil = Date.now() + RECHECK_MS;
      if ((await conn.connectedReplicas(c)) >= replicas) {
        g.shortUntil = 0;
        return;
      }
    }
    throw new KvConnectionError(
      `Redis at ${conn.where}: this key's master has fewer than ${replicas} replicas acknowledging writes; the write was not sent, retry once its replicas are back`,
    );
  }

  return async function write<T>(key: string, send: Send<T>): Promise<T> {
    // A value and its version record share a slot: the value's key names the master.
    const c = await conn.nodeFor(dataKey(key));
    const g = gateOf(c);
    await open(c, g);
    let value: T;
    let acks: number;
    try {
      [value, acks] = await Promise.all([send(c, false), waitAfter(c, g)]);
    } catch (e) {
      if (!isNoScript(e)) throw e;
      // A node that does not know the script yet (a promoted replica): EVAL it, with a WAIT after it.
      [value, acks] = await Promise.all([send(c, true), waitAfter(c, g)]);
    }
    if (acks < replicas) {
      g.shortUntil = Date.now() + RECHECK_MS;
      throw new KvTimeoutError(
        `Redis at ${conn.where}: ${acks} of ${replicas} replicas acknowledged the write within ${waitMs} ms; it is applied on the master but may be lost if the master fails now, write it again once replicas are back`,
      );
    }
    return value;
  };
}
