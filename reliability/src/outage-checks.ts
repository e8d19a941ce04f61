import { expect } from "vitest";
import { type AppProcess, CRASH_SIGNS } from "./app-process.js";
import type { OutageRun } from "./outage.js";

/** What a store-outage scenario records: the run's phases and whether the app lived through it. */
export function outageFigures(what: string, timeoutMs: number, run: OutageRun, app: AppProcess) {
  return {
    what,
    timeoutMs,
    outageMs: run.outageMs,
    sessionsBefore: run.before,
    sessionsAcknowledged: run.acknowledged,
    sessionsLost: run.lost.length,
    steady: run.steady,
    inFlightAtKill: run.inFlight,
    outage: run.outage,
    recoveredAfterMs: run.recoveredAfterMs,
    recovered: run.recovered,
    appAlive: app.alive(),
  };
}

/**
 * The promises of issue 7 for a store outage under load: quick 503s (never slower than the configured
 * wait plus `slackMs`), no dropped connection, no crash, service back without restarting the app, no
 * session lost.
 */
export function expectOutageSurvived(
  run: OutageRun,
  app: AppProcess,
  timeoutMs: number,
  slackMs: number,
): void {
  expect(run.steady.requests).toBeGreaterThan(0);
  expect(Object.keys(run.steady.byStatus).filter((s) => s !== "200" && s !== "303")).toEqual([]);
  // Caught mid-request by the kill: answered too (503 or done), never dropped or hung.
  expect(run.inFlight.errors).toEqual({});
  expect(run.inFlight.maxMs).toBeLessThanOrEqual(timeoutMs + slackMs);
  // During the outage: answers, all 503, none slower than the configured wait plus slack.
  expect(run.outage.errors).toEqual({});
  expect(run.outage.byStatus["503"]).toBeGreaterThan(0);
  expect(Object.keys(run.outage.byStatus)).toEqual(["503"]);
  expect(run.outage.maxMs).toBeLessThanOrEqual(timeoutMs + slackMs);
  // Back without restarting the app.
  expect(run.recoveredAfterMs).toBeLessThan(15_000);
  expect(run.recovered.requests).toBeGreaterThan(0);
  expect(run.recovered.errors).toEqual({});
  expect(Object.keys(run.recovered.byStatus).filter((s) => s !== "200" && s !== "303")).toEqual([]);
  expect(app.alive()).toBe(true);
  expect(app.stderr().match(CRASH_SIGNS)?.[0]).toBeUndefined();
  // The outage reached the app as typed store errors, not as something else.
  expect(app.stderr()).toMatch(/KvConnectionError|KvTimeoutError/);
  expect(run.lost).toEqual([]);
}
