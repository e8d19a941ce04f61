import type { Reporter, TestModule } from "vitest/node";

/**
 * Prints the plain `N passed, N failed` line CI reads. A test file that fails
 * to load counts as a failure, and so does an unhandled error, so a crash can
 * never show up as "0 failed".
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      let ranAny = false;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
        ranAny = true;
      }
      // A module that errored while loading (syntax error, import failure, a throw
      // in a hook) has no failed test to show for it: count it once.
      if (mod.state() === "failed" && (!ranAny || mod.errors().length > 0)) failed++;
    }
    failed += unhandledErrors.length;
    const skip = skipped > 0 ? `, ${skipped} skipped` : "";
    process.stdout.write(`\n${passed} passed, ${failed} failed${skip}\n`);
  }
}
