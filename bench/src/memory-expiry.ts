// MemoryStore expiry with many live sessions: what finding the expired entries costs an idle store,
// and what keeping track of deadlines costs each write. Every entry has a deadline, as a session does.
//   pnpm --filter @kvsession/bench bench:memory:expiry
//   ... --entries N --seconds N --rounds N     (defaults 1000000, 5 and 5)
// It runs the built `dist/` of @kvsession/kv (build first), so two builds can be compared side by side.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createMemoryStore } from "@kvsession/kv";
import { flag } from "./http/cli.js";
import { median } from "./median.js";
import { bytesOf } from "./values.js";

const entries = Number(flag("entries") ?? 1_000_000);
const seconds = Number(flag("seconds") ?? 5);
const rounds = Number(flag("rounds") ?? 5);
const WRITES = 200_000;
const HOUR = 3_600_000;

// A full collection before each idle measurement, so what the writes left to collect is not counted as the sweep's.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const value = bytesOf(100);
const store = createMemoryStore({ sweepIntervalMs: 1000 });
const load = process.hrtime.bigint();
for (let i = 0; i < entries; i++) await store.set(`s${i}`, value, { ttl: HOUR + (i % 1000) });
console.log(`${entries} entries loaded in ${Number(process.hrtime.bigint() - load) / 1e6} ms`);

/** Writes per second: new keys (a login), or existing keys moved to a later deadline (a request that slides the idle timeout). */
async function writes(kind: "new" | "slide", round: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < WRITES; i++) {
    const key = kind === "new" ? `n${round}-${i}` : `s${(i * 7919) % entries}`;
    await store.set(key, value, { ttl: HOUR + 1000 + round * 10 + (i % 1000) });
  }
  const ns = Number(process.hrtime.bigint() - start);
  return WRITES / (ns / 1e9);
}

/** An idle store for `seconds`: the sweep's CPU time per second and the event loop's longest stall. */
async function idle(): Promise<{ cpuMsPerS: number; stallMs: number }> {
  gc();
  await sleep(1100);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpu = process.cpuUsage();
  await sleep(seconds * 1000);
  const used = process.cpuUsage(cpu);
  delay.disable();
  return { cpuMsPerS: (used.user + used.system) / 1000 / seconds, stallMs: delay.max / 1e6 };
}

const rows: Record<string, number[]> = {
  "idle: CPU ms per second": [],
  "idle: longest event-loop stall, ms": [],
  "set, new key: ops/s": [],
  "set, later deadline: ops/s": [],
};
for (let r = 0; r < rounds; r++) {
  const i = await idle();
  rows["idle: CPU ms per second"]!.push(i.cpuMsPerS);
  rows["idle: longest event-loop stall, ms"]!.push(i.stallMs);
  rows["set, new key: ops/s"]!.push(await writes("new", r));
  rows["set, later deadline: ops/s"]!.push(await writes("slide", r));
}
for (const [name, xs] of Object.entries(rows))
  console.log(`${name}: median ${median(xs).toFixed(2)} (${xs.map((x) => x.toFixed(2)).join(" ")})`);
await store.close();
