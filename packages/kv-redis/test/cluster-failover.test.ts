import type { KvStore } from "@kvsession/kv";
import {
  clusterNodes,
  masterOfSlot,
  replicaInSync,
  shardOfSlot,
  startCluster,
  type TestCluster,
  waitFor,
} from "@kvsession/test-helpers";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRedisStore } from "../src/index.js";
import { lostWrites, type Outcome, startLoad, summarize } from "./failover-load.js";

// A 3-master + 3-replica Cluster of this file's own (AOF, fsync on every write), a master taken down
// under load: the store must follow the promoted replica, keep the other shards answering, and,
// with `wait`, lose no acknowledged write.
const NODE_TIMEOUT_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enc = (s: string) => new TextEncoder().encode(s);

let cluster: TestCluster | undefined;
beforeAll(async () => {
  cluster = await startCluster({
    replicas: 1,
    nodeTimeoutMs: NODE_TIMEOUT_MS,
    args: ["--appendonly", "yes", "--appendfsync", "always"],
  });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

async function failover(kind: "kill" | "stop", slot: number) {
  // The victim's replica (heir) is the first node to know it has been promoted (it won the election).
  const { master: victim, port: victimPort, heir, slots: faultedSlots } = await shardOfSlot(cluster!, slot);

  // Seeded with the victim alone: following the failover must not depend on the seed staying up.
  const open = (namespace: string, extra: object = {}): KvStore =>
    createRedisStore({
      cluster: { rootNodes: [{ url: victim.url }] },
      namespace,
      // Six nodes fsyncing every write can stall a healthy one for seconds on a busy machine: only a
      // failed answer counts against a healthy shard, not a slow one.
      commandTimeoutMs: 15_000,
      ...extra,
    });
  const plain = open(`${kind}p:`);
  // A replica answers WAIT in milliseconds; the long timeout keeps a busy machine's stall from counting as a failure.
  const durable = open(`${kind}d:`, { wait: { replicas: 1, timeoutMs: 2_000 } });
  try {
    const shape = { workers: 6, keysPerWorker: 4, faultedSlots, maxMs: 40_000 };
    const keys = Array.from({ length: shape.workers * shape.keysPerWorker }, (_, i) => `s${i}`);
    for (const store of [plain, durable]) await store.setMany(keys.map((key) => ({ key, value: enc("0") })));
    // A listing begun before the fault and finished after it still returns every key.
    const firstPage = await plain.listKeys({ prefix: "s", limit: 5 });
    const loads = [
      startLoad(plain, { ...shape, namespace: `${kind}p:` }),
      startLoad(durable, { ...shape, namespace: `${kind}d:` }),
    ];
    await sleep(500);

    const faultAt = Date.now();
    if (kind === "kill") await victim.kill();
    else victim.process.kill("SIGSTOP");
    const promotedAt = await waitFor("replica promoted", 30_000, async () =>
      (await masterOfSlot(heir, slot)) === heir ? Date.now() : undefined,
    );
    // Resumed at once: the stalled master's queued commands now race the news of its demotion.
    if (kind === "stop") victim.process.kill("SIGCONT");
    const plainLoad = loads[0]?.outcomes as Outcome[];
    await waitFor("faulted shard answering again", 30_000, async () =>
      plainLoad.some((x) => x.faulted && x.ok && x.at > promotedAt) ? true : undefined,
    );
    await sleep(500);
    // The old master rejoins as a replica of the promoted one (a SIGSTOPped one by itself).
    if (kind === "kill") await victim.start();
    await waitFor("old master back as an in-sync replica", 30_000, async () => {
      const me = (await clusterNodes(victimPort)).find((n) => n.port === victimPort);
      return me && !me.master && (await replicaInSync(victimPort)) ? true : undefined;
    });
    await sleep(500);
    await Promise.all(loads.map((l) => l.stop()));

    const [plainRun, durableRun] = loads as [(typeof loads)[0], (typeof loads)[0]];
    const figures = {
      kind,
      promotionMs: promotedAt - faultAt,
      plain: {
        ...summarize(plainRun.outcomes, faultAt, promotedAt),
        ackedLost: plainRun.lost.length + (await lostWrites(plain, plainRun.acked)).length,
      },
      durable: {
        reads: summarize(
          durableRun.outcomes.filter((x) => !x.write),
          faultAt,
          promotedAt,
        ),
        all: summarize(durableRun.outcomes, faultAt, promotedAt),
        ackedLost: [...durableRun.lost, ...(await lostWrites(durable, durableRun.acked))],
      },
    };
    console.log(`cluster failover (${kind}):`, JSON.stringify(figures));

    expect(figures.plain.healthyShardFailures, JSON.stringify(figures.plain.healthyErrors)).toBe(0);
    expect(figures.durable.all.healthyShardFailures, JSON.stringify(figures.durable.all.healthyErrors)).toBe(
      0,
    );
    // Back within seconds of the promotion, not when the old master returns (generous bound).
    expect(figures.plain.lastFailureAfterPromotionMs).toBeLessThan(10_000);
    expect(figures.durable.reads.lastFailureAfterPromotionMs).toBeLessThan(10_000);
    expect(figures.durable.ackedLost).toEqual([]);
    // Listing walks the current masters: complete again.
    const listed = new Set<string>();
    for await (const k of plain.keys("s", 10)) listed.add(k);
    expect(keys.filter((k) => !listed.has(k))).toEqual([]);
    const resumed = new Set(firstPage.keys);
    for (let cursor = firstPage.cursor; cursor !== undefined; ) {
      const page = await plain.listKeys({ prefix: "s", limit: 5, cursor });
      for (const k of page.keys) resumed.add(k);
      cursor = page.cursor;
    }
    expect(keys.filter((k) => !resumed.has(k))).toEqual([]);
  } finally {
    await plain.close();
    await durable.close();
  }
}

it("follows a replica promoted after its master is killed (SIGKILL), then the old master rejoining", async () => {
  await failover("kill", 0);
}, 90_000);

it("follows a replica promoted after its master stalls (SIGSTOP past the node timeout, then SIGCONT)", async () => {
  await failover("stop", 16383);
}, 90_000);
