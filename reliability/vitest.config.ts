import { defineConfig } from "vitest/config";
import SummaryReporter from "../scripts/summary-reporter.ts";

// Same source resolution as the main suite: workspace packages from their TypeScript.
const conditions = ["@kvsession/source"];

/**
 * `pnpm test:reliability` (short form, the one CI runs) and
 * `pnpm test:reliability:long` (RELIABILITY=long: longer outages, soak, more fuzz runs).
 * Scenarios start servers and HTTP loads of their own, so files run one at a time.
 */
export default defineConfig({
  root: import.meta.dirname,
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: "reliability",
    include: ["test/**/*.test.ts"],
    reporters: ["default", new SummaryReporter()],
    testTimeout: process.env.RELIABILITY === "long" ? 900_000 : 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
  },
});
