import { it } from "vitest";

/**
 * Probes an external service (Redis, PostgreSQL…) before its tests register.
 * Reachable: returns true. Unreachable on a laptop: registers one skipped test
 * whose name gives the one-line reason and returns false. Unreachable with
 * `CI=true`: registers a failing test instead, because in CI a missing service
 * is a failure, never a silent skip.
 *
 * @example
 * if (await requireService("Redis at " + url, () => ping(url))) {
 *   runStoreConformance("kv-redis", () => createRedisStore({ url }));
 * }
 */
export async function requireService(
  name: string,
  probe: () => Promise<unknown>,
  timeoutMs = 3000,
): Promise<boolean> {
  let reason: string;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs).unref(),
      ),
    ]);
    return true;
  } catch (error) {
    reason = error instanceof Error ? error.message : String(error);
  }
  if (process.env.CI === "true" || process.env.CI === "1") {
    it(`${name} is reachable (required when CI=true)`, () => {
      throw new Error(`${name} is not reachable: ${reason}. .ci/run must start it before the tests.`);
    });
  } else {
    console.warn(`skipping ${name} tests: ${reason}`);
    it.skip(`${name} tests skipped: not reachable (${reason})`, () => {});
  }
  return false;
}
