import { defineConfig } from "vitest/config";
import SummaryReporter from "./scripts/summary-reporter.ts";

// Workspace packages are resolved from their TypeScript sources through the
// "@kvsession/source" export condition, so tests never need a build step.
const conditions = ["@kvsession/source"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    reporters: ["default", new SummaryReporter()],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: keep files in separate forks but never oversubscribe.
    pool: "forks",
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: "packages", include: ["packages/*/test/**/*.test.ts"] } },
      { extends: true, test: { name: "examples", include: ["examples/*/test/**/*.test.ts"] } },
    ],
  },
});
