// What the Redis store's layout costs the server: a compare-and-set version kept beside the value
// (the layout @kvsession/kv-redis uses: a version record key next to each value) against a version
// carried inside the value itself (one key, the version as a prefix of the stored bytes).
//   pnpm --filter @kvsession/bench bench:redis:layout        (--rounds N --ops N)
// A private redis-server; per operation, the server's own CPU time (INFO cpu, user + system) over
// OPS operations kept 64 in flight, each of 64 workers driving a key of its own so that every
// compare-and-set succeeds. The two layouts alternate round by round; median of the rounds.
// It measures the server side only: a session request on Redis is one read and one
// compare-and-set in the default mode, two compare-and-sets in serialised mode.

import { startRedis } from "@kvsession/test-helpers";
import { createClient } from "redis";
import { COMPARE_AND_SET } from "../../packages/kv-redis/src/scripts.js";
import { flag } from "./http/cli.js";
import { median } from "./median.js";

const ROUNDS = Number(flag("rounds") ?? 5);
const OPS = Number(flag("ops") ?? 100_000);
const WORKERS = 64;

/**
 * The one-key layout's compare-and-set, stored as version + "|" + value. ARGV: the expected version
 * with its "|", the new value already prefixed by the client, px. GETRANGE reads only the prefix, so
 * the script never copies the value into Lua.
 */
const ONE_KEY_CAS = `
if redis.call("GETRANGE", KEYS[1], 0, #ARGV[1] - 1) ~= ARGV[1] then return 0 end
if not redis.call("SET", KEYS[1], ARGV[2], "XX", "PX", ARGV[3]) then return 0 end
return 1`;

type Client = ReturnType<typeof createClient>;

async function serverCpuUs(c: Client): Promise<number> {
  const info = await c.info("cpu");
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1]);
  return (read("used_cpu_user") + read("used_cpu_sys")) * 1e6;
}

/** Runs `op(worker)` OPS times over WORKERS workers; the server's CPU µs per operation. */
async function measure(c: Client, op: (w: number) => Promise<unknown>): Promise<number> {
  const before = await serverCpuUs(c);
  let next = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, w) => {
      while (next < OPS) {
        next++;
        await op(w);
      }
    }),
  );
  return ((await serverCpuUs(c)) - before) / OPS;
}

async function main() {
  const server = await startRedis();
  const c = createClient({ url: server.url });
  await c.connect();
  try {
    const casSha = await c.scriptLoad(COMPARE_AND_SET.source);
    const oneSha = await c.scriptLoad(ONE_KEY_CAS);
    const rows: Array<{ size: number; results: Record<string, number[]> }> = [];
    for (const size of [150, 4096]) {
      const value = "x".repeat(size);
      const results: Record<string, number[]> = {};
      const add = (k: string, v: number) => {
        results[k] = [...(results[k] ?? []), v];
      };
      for (let round = 0; round < ROUNDS; round++) {
        // Each round starts both layouts from a fresh version 0 for each worker's key.
        await c.flushAll();
        for (let w = 0; w < WORKERS; w++) {
          await c.set(`two:${w}`, value, { PX: 600_000 });
          await c.set(`two:v:${w}`, "0", { PX: 600_000 });
          await c.set(`one:${w}`, `0|${value}`, { PX: 600_000 });
        }
        const two = {
          cas: (w: number, n: number) =>
            c.evalSha(casSha, {
              keys: [`two:${w}`, `two:v:${w}`],
              arguments: [String(n), value, "600000", String(n + 1)],
            }),
          read: (w: number) => c.mGet([`two:v:${w}`, `two:${w}`]),
        };
        const one = {
          cas: (w: number, n: number) =>
            c.evalSha(oneSha, { keys: [`one:${w}`], arguments: [`${n}|`, `${n + 1}|${value}`, "600000"] }),
          read: (w: number) => c.get(`one:${w}`),
        };
        const layouts = { two, one };
        for (const name of round % 2 === 0 ? (["two", "one"] as const) : (["one", "two"] as const)) {
          const layout = layouts[name];
          // A worker's n-th operation expects version n: a counter per worker keeps them in step.
          const seen = new Array<number>(WORKERS).fill(0);
          add(`${name} cas`, await measure(c, (w) => layout.cas(w, seen[w]!++)));
          add(`${name} read`, await measure(c, (w) => layout.read(w)));
        }
        const one0 = await c.get("one:0");
        if (one0 === null || one0.startsWith("0|") || (await c.get("two:v:0")) === "0")
          throw new Error("the compare-and-sets did not write: the measurement is void");
      }
      rows.push({ size, results });
    }
    console.log(
      `| value | layout | compare-and-set, server µs | read, server µs | a default-mode request (read + compare-and-set) | a serialised request (two compare-and-sets) |`,
    );
    console.log("| ---: | --- | ---: | ---: | ---: | ---: |");
    for (const { size, results } of rows)
      for (const [name, label] of [
        ["two", "version record beside the value (current)"],
        ["one", "version inside the value"],
      ] as const) {
        const cas = median(results[`${name} cas`]!);
        const read = median(results[`${name} read`]!);
        console.log(
          `| ${size} B | ${label} | ${cas.toFixed(2)} | ${read.toFixed(2)} | ${(read + cas).toFixed(2)} | ${(2 * cas).toFixed(2)} |`,
        );
      }
    console.log(`\n${ROUNDS} rounds of ${OPS} operations, ${WORKERS} in flight; medians.`);
  } finally {
    await c.quit();
    await server.stop();
  }
}

await main();
