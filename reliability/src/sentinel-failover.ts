import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { type RedisServer, replicaInSync, type SentinelGroup, waitFor } from "@kvsession/test-helpers";
import {
  type AppLoad,
  type FailoverApp,
  faultAndRecover,
  figuresOf,
  loadApp,
  openSessions,
} from "./cluster-failover.js";

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
  /** The node of the pair that is not `port` (undefined when `port` is neither). */
  const otherThan = (port: number | undefined) =>
    port === victim.port ? heir : port === heir.port ? victim : undefined;
  let demoted: "old master" | "promoted replica" | undefined;

  // When the Sentinels start naming the promoted replica: clients ask them, so they cannot follow sooner.
  let switched: Promise<number | undefined> = Promise.resolve(undefined);
  const { faultAt, promotedAt, backAt } = await faultAndRecover({
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
    // One master again, the one the Sentinels name (the promoted replica, unless they kept the old
    // master), and the other node its in-sync replica.
    backAsReplica: async () => {
      const other = otherThan(await group.masterPort());
      return other !== undefined && !(await isMaster(other.port)) && (await replicaInSync(other.port));
    },
    // A stalled master SIGCONTed at its replica's promotion is sometimes left a master for longer than
    // the test waits: by the Sentinels beside the promoted one, or kept by them as the master. What is
    // under test is the apps, so the test then makes the node the Sentinels do not name a replica of
    // the one they do, as an operator would, and the results say which.
    ...(o.kind === "stop"
      ? {
          demote: async () => {
            const named = await group.masterPort();
            const other = otherThan(named);
            if (other === undefined) return;
            demoted = other === victim ? "old master" : "promoted replica";
            await run("redis-cli", ["-p", String(other.port), "replicaof", "127.0.0.1", String(named)]);
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
    oldMasterDemotedBy:
      demoted === undefined
        ? "Sentinel"
        : demoted === "old master"
          ? "the test (REPLICAOF)"
          : "nobody: the Sentinels kept it as the master, and the test made the promoted replica its replica",
    apps: Object.fromEntries(
      o.apps.map((a, i) => {
        const { healthyShards: _, ...f } = figuresOf(loads[i] as AppLoad, faultAt, promotedAt, backAt);
        return [a.name, f];
      }),
    ),
  };
}
