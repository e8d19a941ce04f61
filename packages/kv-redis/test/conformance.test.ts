import { randomBytes } from "node:crypto";
import { requireService, runStoreConformance } from "@kvsession/kv-test-suite";
import { pingRedis as ping } from "@kvsession/test-helpers";
import { createRedisStore } from "../src/index.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
// A namespace of this run only: nothing else in that Redis is touched.
const namespace = `kvtest:${randomBytes(6).toString("hex")}:`;

if (await requireService(`Redis at ${url}`, () => ping(url))) {
  runStoreConformance("kv-redis (standalone)", () => createRedisStore({ url, namespace }));
}

if (await requireService(`Redis at ${url}`, () => ping(url))) {
  // Without version records: plain SET writes, no compare-and-set declared.
  runStoreConformance("kv-redis (standalone, versions: false)", () =>
    createRedisStore({ url, namespace: namespace.replace(/:$/, "-nv:"), versions: false }),
  );
}
