import type { KvStore } from "@kvsession/kv";
import { createRedisStore } from "@kvsession/kv-redis";
import { replicaInSync, startRedis } from "@kvsession/test-helpers";
import { record } from "./record.js";

/**
 * What the kv-redis `wait` option costs: writes per second of 1 and of 64 callers, and the median
 * latency of a lone write, with `wait: { replicas: 1 }` and without, on a redis-server master with
 * one replica of this script's own (loopback). The two stores run in alternated rounds in one
 * process; each figure is the median of the rounds, and the ratio of each pair of neighbouring
 * rounds is reported too. Records `results/wait-cost.<form>.json`.
 *
 *   node --import tsx --conditions=@kvsession/source reliability/src/wait-cost.ts
 */
const ROUNDS = 5;
const ROUND_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function writesPerSecond(store: KvStore, callers: number): Promise<{ rate: number; p50Ms: number }> {
  const value = new Uint8Array(100);
  const until = Date.now() + ROUND_MS;
  const lat: number[] = [];
  let ops = 0;
  await Promise.all(
    Array.from({ length: callers }, async (_, w) => {
      for (let i = 0; Date.now() < until; i++) {
        const t = performance.now();
        await store.set(`k${w}:${i % 50}`, value);
        lat.push(performance.now() - t);
        ops++;
      }
    }),
  );
  return { rate: Math.round(ops / (ROUND_MS / 1000)), p50Ms: Math.round(median(lat) * 1000) / 1000 };
}

const master = await startRedis();
const replica = await startRedis(["--replicaof", "127.0.0.1", String(master.port)]);
try {
  for (let i = 0; i < 200 && !(await replicaInSync(replica.port)); i++) await sleep(50);
  const stores = {
    plain: createRedisStore({ url: master.url, namespace: "wc-plain:" }),
    wait: createRedisStore({ url: master.url, namespace: "wc-wait:", wait: { replicas: 1 } }),
  };
  const runs: Record<string, Record<string, Array<{ rate: number; p50Ms: number }>>> = {
    plain: { "1": [], "64": [] },
    wait: { "1": [], "64": [] },
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const callers of [1, 64]) {
      // Alternated, and the other way round every other round.
      const order = r % 2 === 0 ? (["plain", "wait"] as const) : (["wait", "plain"] as const);
      for (const name of order)
        runs[name]?.[String(callers)]?.push(await writesPerSecond(stores[name], callers));
    }
  }
  const figures: Record<string, unknown> = {};
  for (const [name, byCallers] of Object.entries(runs)) {
    for (const [callers, xs] of Object.entries(byCallers)) {
      figures[`${name}, ${callers} in flight`] = {
        writesPerSecond: median(xs.map((x) => x.rate)),
        p50Ms: median(xs.map((x) => x.p50Ms)),
        // One line of text: the results file stays as biome formats it.
        rounds: xs.map((x) => x.rate).join(", "),
      };
    }
  }
  // Neighbouring rounds share the machine's load of the moment: their ratio is steadier than either figure.
  for (const callers of ["1", "64"]) {
    const ratios = (runs.wait?.[callers] ?? []).map(
      (x, i) => x.rate / (runs.plain?.[callers]?.[i]?.rate ?? 1),
    );
    figures[`wait / plain, ${callers} in flight`] = {
      median: Math.round(median(ratios) * 100) / 100,
      rounds: ratios.map((x) => (Math.round(x * 100) / 100).toFixed(2)).join(", "),
    };
  }
  for (const s of Object.values(stores)) {
    await s.clear();
    await s.close();
  }
  record("wait-cost", {
    what: `100-byte versioned sets on a redis-server master with one replica (loopback), ${ROUNDS} alternated rounds of ${ROUND_MS} ms, medians`,
    ...figures,
  });
  console.log(JSON.stringify(figures, null, 2));
} finally {
  await replica.stop();
  await master.stop();
}
