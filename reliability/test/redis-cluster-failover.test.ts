import { startCluster, type TestCluster } from "@kvsession/test-helpers";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type AppFigures, type FailoverApp, failover, startSideBySide } from "../src/cluster-failover.js";
import { record } from "../src/record.js";
import { expectFollowed } from "./followed.js";

// A 3-master + 3-replica Redis Cluster (AOF, fsync on every write, node timeout 2 s) of this file's
// own, two kvSession apps on it (the store as configured by default, and with `wait` for one
// replica) and the peer (express-session + connect-redis on an ioredis Cluster client), each under
// HTTP load while a master is killed, then while another one stalls. Only our stack is asserted:
// the peer's figures are measured for comparison.
const NODE_TIMEOUT_MS = 2000;
const PER_SIDE = 4;

let cluster: TestCluster | undefined;
const apps: FailoverApp[] = [];
const ours = () => apps.filter((a) => a.name !== "peer");
beforeAll(async () => {
  cluster = await startCluster({
    replicas: 1,
    nodeTimeoutMs: NODE_TIMEOUT_MS,
    args: ["--appendonly", "yes", "--appendfsync", "always"],
  });
  // Seeded with one master only: following a failover must not depend on the seed staying up.
  const seed = cluster.nodes[0]?.url as string;
  await startSideBySide(apps, { CLUSTER_NODES: seed });
}, 90_000);
afterAll(async () => {
  for (const a of apps) await a.app.kill();
  await cluster?.stop();
});

/** Sessions on the other masters never fail; the rest is what every failover test asserts. */
function expectFollowedAndShardsApart(run: Awaited<ReturnType<typeof failover>>) {
  for (const a of ours()) {
    const f = run.apps[a.name] as AppFigures;
    expect(f.healthyShards.failed, `${a.name}: ${JSON.stringify(f.healthyShards.answers)}`).toBe(0);
  }
  expectFollowed(run.apps, ours());
}

it("a master SIGKILLed under HTTP load: its replica is followed, other shards unaffected, the old master rejoins", async () => {
  const run = await failover(cluster as TestCluster, { kind: "kill", slot: 0, apps, perSide: PER_SIDE });
  record("redis-cluster-kill", {
    what: `kvSession apps on a kv-redis Cluster store, and the peer (express-session + connect-redis 8 on an ioredis Cluster client, saving before it answers) (3 masters + 3 replicas, AOF fsync always, cluster-node-timeout ${NODE_TIMEOUT_MS}); ${2 * PER_SIDE} users per app (half on the failed shard) reading then writing their sessions; the master of slot 0 SIGKILLed, restarted once the failed shard answered again`,
    ...run,
  });
  console.log(JSON.stringify(run));
  expectFollowedAndShardsApart(run);
}, 120_000);

it("a master SIGSTOPped past the node timeout, SIGCONTed at its replica's promotion: the replica is followed, nothing acknowledged with wait is lost", async () => {
  const run = await failover(cluster as TestCluster, { kind: "stop", slot: 16383, apps, perSide: PER_SIDE });
  record("redis-cluster-stall", {
    what: `the same apps and cluster; the master of slot 16383 SIGSTOPped, SIGCONTed as soon as its replica reported itself master`,
    ...run,
  });
  console.log(JSON.stringify(run));
  expectFollowedAndShardsApart(run);
}, 120_000);
