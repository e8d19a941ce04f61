import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LONG } from "./mode.js";

const RESULTS = join(import.meta.dirname, "..", "results");

/**
 * Saves what a scenario measured as `reliability/results/<scenario>.<short|long>.json`,
 * so `docs/reliability.md` quotes figures a run produced, never typed-in ones.
 *
 * @example
 * record("redis-restart", { what: "Redis killed mid-load", served: 5120, errors: { "503": 311 }, lost: 0 });
 */
export function record(scenario: string, figures: Record<string, unknown>): void {
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `${scenario}.${LONG ? "long" : "short"}.json`);
  const out = { scenario, form: LONG ? "long" : "short", at: new Date().toISOString(), ...figures };
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
}
