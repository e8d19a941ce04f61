import { type SentinelGroup, startSentinelGroup } from "@kvsession/test-helpers";
import { afterAll, beforeAll, it } from "vitest";
import { type FailoverApp, startSideBySide } from "../src/cluster-failover.js";
import { record } from "../src/record.js";
import { sentinelFailover } from "../src/sentinel-failover.js";
import { expectFollowed } from "./followed.js";

// A master with one replica (AOF, fsync on every write) and three Sentinels (quorum 2) of this
// file's own, two kvSession apps on kv-redis's `sentinel` option (the store as configured by
// default, and with `wait` for one replica) and the peer (express-session + connect-redis on an
// ioredis Sentinel client), each under HTTP load while the master is killed, then while the
// promoted one stalls. Only our stack is asserted: the peer's figures are measured for comparison.
const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 3000;
const USERS = 6;

let group: SentinelGroup | undefined;
const apps: FailoverApp[] = [];
const ours = () => apps.filter((a) => a.name !== "peer");
beforeAll(async () => {
  group = await startSentinelGroup({
    sentinels: 3,
    quorum: 2,
    downAfterMs: DOWN_AFTER_MS,
    failoverTimeoutMs: FAILOVER_TIMEOUT_MS,
    args: ["--appendonly", "yes", "--appendfsync", "always"],
  });
  const sentinels = group.sentinels.map((s) => `127.0.0.1:${s.port}`).join(",");
  await startSideBySide(apps, { SENTINELS: sentinels });
}, 90_000);
afterAll(async () => {
  for (const a of apps) await a.app.kill();
  await group?.stop();
});

const setting = `master + 1 replica (AOF fsync always), 3 Sentinels (quorum 2, down-after-milliseconds ${DOWN_AFTER_MS}, failover-timeout ${FAILOVER_TIMEOUT_MS}); ${USERS} users per app reading then writing their sessions`;

it("the master SIGKILLed under HTTP load: the promoted replica is followed, the old master rejoins as a replica", async () => {
  const run = await sentinelFailover(group as SentinelGroup, { kind: "kill", apps, users: USERS });
  record("redis-sentinel-kill", {
    what: `kvSession apps on kv-redis's sentinel option, and the peer (express-session + connect-redis 8 on an ioredis Sentinel client, saving before it answers); ${setting}; the master SIGKILLed, restarted once sessions answered again`,
    ...run,
  });
  console.log(JSON.stringify(run));
  expectFollowed(run.apps, ours());
}, 120_000);

it("the master SIGSTOPped past down-after-milliseconds, SIGCONTed at its replica's promotion: the replica is followed, nothing acknowledged with wait is lost", async () => {
  const run = await sentinelFailover(group as SentinelGroup, { kind: "stop", apps, users: USERS });
  record("redis-sentinel-stall", {
    what: `the same apps and servers; ${setting}; the master SIGSTOPped, SIGCONTed as soon as its replica reported itself master`,
    ...run,
  });
  console.log(JSON.stringify(run));
  expectFollowed(run.apps, ours());
}, 180_000);
