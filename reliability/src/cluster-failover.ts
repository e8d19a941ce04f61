import {
  clusterNodes,
  masterOfSlot,
  type RedisServer,
  replicaInSync,
  shardOfSlot,
  type TestCluster,
  waitFor,
} from "@kvsession/test-helpers";
import slotOf from "cluster-key-slot";
import { APP_MAIN, type ClusterApp, startClusterApp } from "./cluster-app.js";
import { type Answer, type Call, send, startLoad } from "./load.js";
import { handleOfCookie } from "./session-app.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The `wait` app's bound on each write's `WAIT`. */
const WAIT_TIMEOUT_MS = 500;
/**
 * How long after the old master is back as a replica requests may still fail: a `WAIT` sent just
 * before it counted times out, and the driver then refuses writes to that master until its next
 * `ROLE` check, a quarter second later; plus as much again for the poll that saw the replica back.
 */
const SETTLE_MS = WAIT_TIMEOUT_MS + 250 + 250;
/** How long the old master has to come back as an in-sync replica. */
const BACK_WITHIN_MS = 60_000;

/** One request of the failover load, with the side of the fault its session is on. */
export interface Hit {
  at: number;
  ms: number;
  status: number;
  /** The 503 body (the store error's code), or the network error. */
  why: string;
  faulted: boolean;
  write: boolean;
}

export interface AppLoad {
  hits: Hit[];
  acked: Map<number, number>;
  lost: string[];
  cookies: string[];
  stop(): Promise<void>;
}

/** The counter a session holds, from GET /data; undefined when the request failed. */
function counterOf(a: Answer): number | undefined {
  if (a.status !== 200) return undefined;
  const body = JSON.parse(a.body) as { exists: boolean; data: { n?: number } };
  return body.exists ? (body.data.n ?? 0) : 0;
}

/**
 * Sessions on the app, `onCount` whose record lives on the faulted server and `offCount` elsewhere:
 * new sessions are opened until both sides have enough.
 */
export async function openSessions(
  app: ClusterApp,
  faulted: (cookie: string) => boolean,
  onCount: number,
  offCount: number,
) {
  const url = new URL(app.base);
  const on: string[] = [];
  const off: string[] = [];
  for (let i = 0; i < 200 && (on.length < onCount || off.length < offCount); i++) {
    const a = await send(url, undefined, { method: "POST", path: "/set/n/0" }, 10_000);
    if (a.status !== 200 || !a.cookie) throw new Error(`opening a session answered ${a.status} ${a.body}`);
    if (faulted(a.cookie)) {
      if (on.length < onCount) on.push(a.cookie);
    } else if (off.length < offCount) off.push(a.cookie);
  }
  if (on.length < onCount || off.length < offCount) throw new Error("not enough sessions on each side");
  return { on, off };
}

/** The Redis key of a session, from its cookie: kvSession's (under `namespace`) or connect-redis's (under `prefix`). */
export const keyOf = {
  kvSession: (namespace: string) => (cookie: string) => `${namespace}sess:${handleOfCookie(cookie)}`,
  connectRedis: (prefix: string) => (cookie: string) => {
    // express-session's cookie: "s:" + session ID + "." + signature, URL-encoded.
    const value = decodeURIComponent(cookie.slice(cookie.indexOf("=") + 1));
    return prefix + value.slice(2, value.lastIndexOf("."));
  },
};

/**
 * The load of one app: each user reads its session (GET /data, checking that the counter is not
 * behind the last write the app acknowledged) then writes the next counter (POST /set/n/k), in a
 * loop, as a session handler does. An acknowledged write that a later read does not see is lost,
 * even if a later write covers it up.
 */
export function loadApp(app: ClusterApp, users: { on: string[]; off: string[] }): AppLoad {
  const cookies = [...users.on, ...users.off];
  const faultedUser = (w: number) => w < users.on.length;
  const hits: Hit[] = [];
  const acked = new Map<number, number>();
  const lost: string[] = [];
  const counters = new Map<number, number>();
  const load = startLoad({
    base: app.base,
    connections: cookies.length,
    maxRequests: 200_000,
    maxMs: 90_000,
    timeoutMs: 15_000,
    async user(w, call) {
      const cookie = cookies[w] as string;
      const timed = async (c: Call, write: boolean) => {
        const at = Date.now();
        const a = await call(c);
        hits.push({
          at,
          ms: Date.now() - at,
          status: a.status,
          why: a.status === 200 ? "" : (a.error ?? a.body),
          faulted: faultedUser(w),
          write,
        });
        return a;
      };
      const read = await timed({ method: "GET", path: "/data", cookie }, false);
      const seen = counterOf(read);
      const before = acked.get(w) ?? 0;
      if (seen !== undefined && seen < before) lost.push(`user ${w}: read ${seen}, acknowledged ${before}`);
      const n = (counters.get(w) ?? 0) + 1;
      counters.set(w, n);
      const wrote = await timed({ method: "POST", path: `/set/n/${n}`, cookie }, true);
      if (wrote.status === 200) acked.set(w, n);
      if (read.status !== 200 || wrote.status !== 200) await sleep(20);
    },
  });
  return {
    hits,
    acked,
    lost,
    cookies,
    async stop() {
      load.stop();
      await load.done;
    },
  };
}

/** After the load: every user's session read once more (retried while the store refuses). */
export async function finalCheck(app: ClusterApp, run: AppLoad): Promise<void> {
  const url = new URL(app.base);
  for (const [w, n] of run.acked) {
    let seen: number | undefined;
    for (let i = 0; i < 50 && seen === undefined; i++) {
      seen = counterOf(
        await send(url, undefined, { method: "GET", path: "/data", cookie: run.cookies[w] }, 10_000),
      );
      if (seen === undefined) await sleep(100);
    }
    if (seen === undefined || seen < n)
      run.lost.push(`user ${w} at the end: read ${seen}, acknowledged ${n}`);
  }
}

const count = (hits: Hit[]) => {
  const by: Record<string, number> = {};
  for (const h of hits) {
    const key = h.status === 0 ? h.why : `${h.status} ${h.why}`;
    by[key] = (by[key] ?? 0) + 1;
  }
  return by;
};

export type AppFigures = ReturnType<typeof figuresOf>;

/** What one app went through, relative to the fault and to the promotion. */
export function figuresOf(run: AppLoad, faultAt: number, promotedAt: number, backAt: number) {
  // Everything that ended after the fault began, including what was in flight when it did.
  const during = run.hits.filter((h) => h.at + h.ms >= faultAt);
  const failed = during.filter((h) => h.faulted && h.status !== 200);
  const lastFailure = failed.reduce((m, h) => Math.max(m, h.at + h.ms), faultAt);
  const firstOk = (pick: (h: Hit) => boolean) => {
    const h = during.find((x) => x.faulted && pick(x) && x.status === 200 && x.at >= promotedAt);
    return h === undefined ? null : h.at + h.ms - promotedAt;
  };
  const healthy = during.filter((h) => !h.faulted);
  return {
    requests: run.hits.length,
    beforeFault: count(run.hits.filter((h) => h.at + h.ms < faultAt)),
    failedShard: {
      requests: during.filter((h) => h.faulted).length,
      failed: failed.length,
      answers: count(failed),
      errorWindowMs: failed.length === 0 ? 0 : lastFailure - (failed[0]?.at ?? faultAt),
      lastFailureAfterPromotionMs: failed.length === 0 ? null : lastFailure - promotedAt,
      firstReadAfterPromotionMs: firstOk((h) => !h.write),
      firstWriteAfterPromotionMs: firstOk((h) => h.write),
      maxMs: Math.max(0, ...during.filter((h) => h.faulted).map((h) => h.ms)),
    },
    healthyShards: {
      requests: healthy.length,
      failed: healthy.filter((h) => h.status !== 200).length,
      answers: count(healthy.filter((h) => h.status !== 200)),
      maxMs: Math.max(0, ...healthy.map((h) => h.ms)),
      slowest: [...healthy]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 3)
        .map((h) => ({ fromFaultMs: h.at - faultAt, ms: h.ms, write: h.write })),
    },
    afterOldMasterBack: count(run.hits.filter((h) => h.at >= backAt + SETTLE_MS)),
    writesAcknowledged: run.hits.filter((h) => h.write && h.status === 200).length,
    acknowledgedWritesLost: run.lost.length,
    lostExamples: run.lost.slice(0, 3),
  };
}

export interface FailoverApp {
  name: string;
  app: ClusterApp;
  keyOf: (cookie: string) => string;
}

/**
 * Starts the apps every failover scenario runs side by side against one Redis deployment, pushing
 * each onto `apps` as it starts (so a later failure still leaves it to be stopped): ours as
 * configured by default, ours with `wait` for one replica, and the peer (express-session +
 * connect-redis on ioredis). `connection`: how the apps reach the deployment (their environment).
 */
export async function startSideBySide(
  apps: FailoverApp[],
  connection: Record<string, string>,
): Promise<void> {
  for (const [name, env] of [
    ["default", {}],
    ["wait", { WAIT_REPLICAS: "1", WAIT_TIMEOUT_MS: String(WAIT_TIMEOUT_MS) }],
  ] as const) {
    const namespace = `rel-${name}:`;
    apps.push({
      name,
      keyOf: keyOf.kvSession(namespace),
      app: await startClusterApp({ ...connection, STORE_NAMESPACE: namespace, ...env }),
    });
  }
  apps.push({
    name: "peer",
    keyOf: keyOf.connectRedis("peer:"),
    app: await startClusterApp({ ...connection, STORE_PREFIX: "peer:" }, APP_MAIN.peer),
  });
}

/** What one failover test's deployment answers; the steps of `faultAndRecover` are the same for every one. */
export interface FaultSteps {
  kind: "kill" | "stop";
  victim: RedisServer;
  apps: FailoverApp[];
  loads: AppLoad[];
  /** Whether the replica reports itself master. */
  promoted(): Promise<boolean>;
  /** Whether a request's answer counts as the sessions behind the failed master answering again. */
  answering(h: Hit): boolean;
  /** Whether the old master is back as an in-sync replica. */
  backAsReplica(): Promise<boolean>;
  /** Called right after the fault. */
  onFault?(): void;
  /**
   * Makes the old master a replica, when whatever should (Sentinel) has not within `BACK_WITHIN_MS`;
   * without it the old master not back by then is a failure.
   */
  demote?(): Promise<void>;
}

/**
 * With the loads running: the fault (SIGKILL, or SIGSTOP until the replica is promoted), the wait
 * for the promotion and for answers from behind it, the old master started again and back as a
 * replica, then the loads stopped and every acknowledged write checked.
 */
export async function faultAndRecover(o: FaultSteps) {
  await sleep(600);
  const faultAt = Date.now();
  if (o.kind === "kill") await o.victim.kill();
  else o.victim.process.kill("SIGSTOP");
  o.onFault?.();
  const promotedAt = await waitFor("replica promoted", 30_000, async () =>
    (await o.promoted()) ? Date.now() : undefined,
  );
  if (o.kind === "stop") o.victim.process.kill("SIGCONT");
  const first = o.loads[0] as AppLoad;
  await waitFor("sessions behind the failed master answering again", 30_000, async () =>
    first.hits.some((h) => o.answering(h) && h.status === 200 && h.at >= promotedAt) ? true : undefined,
  );
  await sleep(800);
  if (o.kind === "kill") await o.victim.start();
  // Sentinel demotes a returning old master on its periodic checks, which can take tens of seconds.
  const isBack = async () => ((await o.backAsReplica()) ? true : undefined);
  const what = "old master back as an in-sync replica";
  if (o.demote !== undefined && !(await waitFor(what, BACK_WITHIN_MS, isBack).catch(() => false)))
    await o.demote();
  await waitFor(what, BACK_WITHIN_MS, isBack);
  const backAt = Date.now();
  // Long enough after the settling time that the requests counted as answered after it are many.
  await sleep(SETTLE_MS + 1200);
  for (const l of o.loads) await l.stop();
  for (const [i, l] of o.loads.entries()) await finalCheck(o.apps[i]!.app, l);
  return { faultAt, promotedAt, backAt };
}

export interface FailoverOptions {
  kind: "kill" | "stop";
  /** The slot whose master is taken down. */
  slot: number;
  /** Apps under load, each with the Redis key of a session, from its cookie. */
  apps: FailoverApp[];
  /** Sessions per app on the failed shard, and as many on the others. */
  perSide: number;
}

/**
 * One master failover under HTTP load: the master of `slot` SIGKILLed (then started again, to
 * rejoin as a replica) or SIGSTOPped (then SIGCONTed as soon as its replica is promoted, when the
 * commands waiting on it race the news of its demotion). Times are measured from the fault and
 * from the moment the promoted replica reports itself master.
 */
export async function failover(cluster: TestCluster, o: FailoverOptions) {
  const { master: victim, port: victimPort, heir, slots: faulted } = await shardOfSlot(cluster, o.slot);

  const loads: AppLoad[] = [];
  for (const a of o.apps)
    loads.push(
      loadApp(a.app, await openSessions(a.app, (c) => faulted.has(slotOf(a.keyOf(c))), o.perSide, o.perSide)),
    );
  const { faultAt, promotedAt, backAt } = await faultAndRecover({
    kind: o.kind,
    victim,
    apps: o.apps,
    loads,
    promoted: async () => (await masterOfSlot(heir, o.slot)) === heir,
    answering: (h) => h.faulted,
    backAsReplica: async () => {
      const me = (await clusterNodes(victimPort)).find((n) => n.port === victimPort);
      return me !== undefined && !me.master && (await replicaInSync(victimPort));
    },
  });

  return {
    kind: o.kind,
    promotionMs: promotedAt - faultAt,
    oldMasterBackMs: backAt - faultAt,
    apps: Object.fromEntries(
      o.apps.map((a, i) => [a.name, figuresOf(loads[i] as AppLoad, faultAt, promotedAt, backAt)]),
    ) as Record<string, AppFigures>,
  };
}
