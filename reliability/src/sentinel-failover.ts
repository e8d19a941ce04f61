import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  type AppLoad,
  type FailoverApp,
  faultAndRecover,
  figuresOf,
  loadApp,
  openSessions,
  waitFor,
} from "./cluster-failover.js";
import { type RedisServer, replicaInSync, type SentinelGroup } from "./servers.js";

const run = promisify(execFile);

async function isMaster(port: number): Promise<boolean> {
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "info", "replication"]);
  return stdout.includes("role:master");
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
  // When the Sentinels start naming the promoted replica: clients ask them, so they cannot follow sooner.
  let switched: Promise<number | undefined> = Promise.resolve(undefined);
  const { faultAt, promotedAt, backAt, demotedByTest } = await faultAndRecover({
    kind: o.kind,
    victim,
    apps: o.apps,
    loads,
    onFault: () => {
      switched = waitFor("Sentinel naming the promoted replica", 30_000, async () =>
        (await group.masterPort()) === heir.port ? Date.now() : undefined,
      ).catch(() => undefined);
    },
    promoted: () => isMaster(heir.port),
    answering: () => true,
    backAsReplica: async () => !(await isMaster(victim.port)) && (await replicaInSync(victim.port)),
    // A stalled master SIGCONTed at its replica's promotion is sometimes left a master by Sentinel for
    // over a minute. What is under test is the apps, so after that minute the test makes it a replica
    // itself, as an operator would, and the results say so.
    ...(o.kind === "stop"
      ? {
          demote: async () => {
            await run("redis-cli", ["-p", String(victim.port), "replicaof", "127.0.0.1", String(heir.port)]);
          },
        }
      : {}),
  });
  const switchedAt = await switched;

  return {
    kind: o.kind,
    promotionMs: promotedAt - faultAt,
    sentinelsNameItMs: switchedAt === undefined ? null : switchedAt - faultAt,
    oldMasterBackMs: backAt - faultAt,
    oldMasterDemotedBy: demotedByTest ? "the test (REPLICAOF)" : "Sentinel",
    apps: Object.fromEntries(
      o.apps.map((a, i) => {
        const { healthyShards: _, ...f } = figuresOf(loads[i] as AppLoad, faultAt, promotedAt, backAt);
        return [a.name, f];
      }),
    ),
  };
}
