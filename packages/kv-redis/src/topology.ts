// biome-ignore lint/suspicious/noExplicitAny: node-redis's cluster internals are untyped enough here
type Any = any;

/**
 * Keeps a Redis Cluster client's slot map current when a master dies or stalls.
 *
 * node-redis re-reads the map only when a node answers MOVED or ASK. A killed master answers
 * nothing, and with the offline queue off every command for its slots fails locally, so no node
 * ever gets the chance to redirect one: the client would follow the promoted replica only once the
 * dead node itself came back. A stalled master keeps its connection open and answers nothing
 * either. So while a master's connection is down, a command has been waiting longer than a healthy
 * cluster ever takes, or a command failed for want of a connection, this asks a master that does
 * answer for the slot map (CLUSTER SLOTS, through node-redis's own rediscovery, which also closes
 * the connections of nodes that left the map and so fails what was still queued on them).
 */
export interface TopologyWatch {
  /** A command failed for want of a connection or an answer: look again soon. */
  suspect(): void;
  stop(): void;
}

/** How often the (local, free) health check runs. */
const CHECK_MS = 100;
/** Between two refreshes while something is wrong: short, so a promotion is followed within this. */
const FAST_GAP_MS = 200;
/** A master that stays away for longer (one with no replica, say) is looked after less often. */
const SLOW_GAP_MS = 1000;
const FAST_FOR_MS = 15_000;
/** No command takes this long on a healthy cluster: its master may have stalled. */
const STALL_MS = 500;
/** How long a node gets to answer a probe, and the slot query after it. */
const PROBE_MS = 1000;

/**
 * @param cluster a node-redis cluster (connected by its owner)
 * @param oldestPending the longest-waiting command still unanswered (any stable token), if any
 */
export function watchTopology(cluster: Any, oldestPending: () => object | undefined): TopologyWatch {
  const slots = cluster?._slots;
  // Another client version without this entry point: the driver then relies on MOVED alone.
  if (typeof slots?.rediscover !== "function") return { suspect() {}, stop() {} };

  let suspected = false;
  let troubleSince: number | undefined;
  let lastRefresh = 0;
  let running = false;
  let stopped = false;
  let head: object | undefined;
  let headSince = 0;
  let rootTurn = 0;

  function unhealthy(now: number): boolean {
    const h = oldestPending();
    if (h !== head) {
      head = h;
      headSince = now;
    }
    if (suspected) return true;
    if (h !== undefined && now - headSince >= STALL_MS) return true;
    for (const m of cluster.masters as Array<{ client?: { isReady: boolean } }>) {
      if (m.client !== undefined && !m.client.isReady) return true;
    }
    return false;
  }

  function check(): void {
    if (running || stopped || !cluster.isOpen) return;
    const now = Date.now();
    if (!unhealthy(now)) {
      troubleSince = undefined;
      return;
    }
    troubleSince ??= now;
    const gap = now - troubleSince < FAST_FOR_MS ? FAST_GAP_MS : SLOW_GAP_MS;
    if (now - lastRefresh < gap) return;
    suspected = false;
    lastRefresh = now;
    running = true;
    refresh().finally(() => {
      running = false;
    });
  }

  async function refresh(): Promise<void> {
    const ready = (cluster.masters as Array<{ client?: Any }>)
      .map((m) => m.client)
      .filter((c) => c?.isReady === true);
    const live = await firstToAnswer(ready, PROBE_MS);
    const roots = (cluster._options?.rootNodes ?? []) as Any[];
    const from = live?.options ?? roots[rootTurn++ % Math.max(1, roots.length)];
    if (from === undefined || stopped) return;
    // The slot query gets a deadline of its own: a stalled node must not hold the refresh forever.
    const startWith = { options: { ...from, socket: { ...from.socket, socketTimeout: PROBE_MS } } };
    try {
      await slots.rediscover(startWith);
    } catch {
      // Reported through the cluster's 'error' event; the next check tries again.
    }
  }

  const timer = setInterval(check, CHECK_MS);
  timer.unref();
  return {
    suspect() {
      suspected = true;
      check();
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** The first of `clients` to answer PING within `ms`, if any: a master that is up and not stalled. */
function firstToAnswer(clients: Any[], ms: number): Promise<Any | undefined> {
  return new Promise((resolve) => {
    let left = clients.length;
    if (left === 0) return resolve(undefined);
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    for (const c of clients) {
      Promise.resolve()
        .then(() => c.sendCommand(["PING"]))
        .then(
          () => {
            clearTimeout(timer);
            resolve(c);
          },
          () => {
            if (--left > 0) return;
            clearTimeout(timer);
            resolve(undefined);
          },
        );
    }
  });
}
