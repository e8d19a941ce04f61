import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  type AppLoad,
  type FailoverApp,
  figuresOf,
  finalCheck,
  loadApp,
  openSessions,
  waitFor,
} from "./cluster-failover.js";
import type { RedisServer, SentinelGroup } from "./servers.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The server's replication section: its role, and for a replica whether its link is up. */
async function replication(port: number): Promise<{ master: boolean; linkUp: boolean }> {
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "info", "replication"]);
  return { master: stdout.includes("role:master"), linkUp: stdout.includes("master_link_status:up") };
}

export interface SentinelFailoverOptions {
  kind: "kill" | "stop";
  apps: FailoverApp[];
  /** Sessions per app (all on the one master). */
  users: number;
}

/**
 * One Sentinel failover under HTTP load: the master SIGKILLed (then started again, for Sentinel to
 * turn it into a replica of the promoted one) or SIGSTOPped (then SIGCONTed as soon as its replica
 * is promoted, when the commands waiting on it race the news of its demotion). Times are measured
 * from the fault and from the moment the replica reports itself master.
 */
export async function sentinelFailover(group: SentinelGroup, o: SentinelFailoverOptions) {
  const victimPort = await waitFor("a master named by Sentinel", 10_000, () => group.masterPort());
  const victim = group.nodes.find((n) => n.port === victimPort) as RedisServer;
  const heir = group.nodes.find((n) => n.port !== victimPort) as RedisServer;

  const loads: AppLoad[] = [];
  for (const a of o.apps) loads.push(loadApp(a.app, await openSessions(a.app, () => true, o.users, 0)));
  await sleep(600);

  const faultAt = Date.now();
  if (o.kind === "kill") await victim.kill();
  else victim.process.kill("SIGSTOP");
  // When the Sentinels start naming the promoted replica: clients ask them, so they cannot follow sooner.
  const switched = waitFor("Sentinel naming the promoted replica", 30_000, async () =>
    (await group.masterPort()) === heir.port ? Date.now() : undefined,
  ).catch(() => undefined);
  const promotedAt = await waitFor("replica promoted", 30_000, async () =>
    (await replication(heir.port)).master ? Date.now() : undefined,
  );
  if (o.kind === "stop") victim.process.kill("SIGCONT");
  const first = loads[0] as AppLoad;
  await waitFor("sessions answering again", 30_000, async () =>
    first.hits.some((h) => h.status === 200 && h.at >= promotedAt) ? true : undefined,
  );
  await sleep(800);
  if (o.kind === "kill") await victim.start();
  await waitFor("old master back as an in-sync replica", 30_000, async () => {
    const r = await replication(victim.port);
    return !r.master && r.linkUp ? true : undefined;
  });
  const backAt = Date.now();
  const switchedAt = await switched;
  await sleep(1200);
  for (const l of loads) await l.stop();
  for (const [i, l] of loads.entries()) await finalCheck(o.apps[i]!.app, l);

  return {
    kind: o.kind,
    promotionMs: promotedAt - faultAt,
    sentinelsNameItMs: switchedAt === undefined ? null : switchedAt - faultAt,
    oldMasterBackMs: backAt - faultAt,
    apps: Object.fromEntries(
      o.apps.map((a, i) => {
        const { healthyShards: _, ...f } = figuresOf(loads[i] as AppLoad, faultAt, promotedAt, backAt);
        return [a.name, f];
      }),
    ),
  };
}
