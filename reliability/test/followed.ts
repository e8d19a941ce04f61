import { expect } from "vitest";
import type { AppFigures, FailoverApp } from "../src/cluster-failover.js";

/**
 * What every failover test asserts of our apps (the peer is measured, not asserted): sessions on
 * the failed master are read again soon after the promotion (a generous bound), every request is
 * answered once the old master is back as a replica and the `wait` app's writes have had time to see it
 * (`SETTLE_MS`), no app crashed; the default store answers
 * again within seconds of the promotion, and with `wait` no write the app acknowledged is lost.
 */
export function expectFollowed(apps: Record<string, Omit<AppFigures, "healthyShards">>, ours: FailoverApp[]) {
  for (const a of ours) {
    const f = apps[a.name] as Omit<AppFigures, "healthyShards">;
    expect(f.failedShard.firstReadAfterPromotionMs, a.name).not.toBeNull();
    expect(f.failedShard.firstReadAfterPromotionMs as number, a.name).toBeLessThan(10_000);
    expect(Object.keys(f.afterOldMasterBack), a.name).toEqual(["200 "]);
    expect(a.app.alive(), a.name).toBe(true);
    expect(a.app.crashed(), a.app.stderr().slice(0, 2000)).toBe(false);
  }
  expect(apps.default?.failedShard.lastFailureAfterPromotionMs ?? 0).toBeLessThan(10_000);
  expect(apps.wait?.lostExamples).toEqual([]);
  expect(apps.wait?.acknowledgedWritesLost).toBe(0);
}
