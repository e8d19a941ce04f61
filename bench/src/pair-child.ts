// Two cases of one suite in one process, measured in alternating short chunks: for rows where the
// difference being judged is smaller than what separates two child processes of the same case.
// At 1 operation in flight a Redis or PostgreSQL operation is a loopback round trip and the client's
// own work a small part of it; one case measured in two fresh processes reads further apart than the
// difference being judged, while two cases alternating in one process see the same conditions.
//   node --import tsx bench/src/pair-child.ts <suite> <case A> <case B> <in flight> <ops per chunk> <max seconds>
// Prints {"ratios":[…]}: for each pair of chunks, A's ops/s divided by B's.
import { performance } from "node:perf_hooks";
import type { BenchSuite } from "./types.js";
import { WARM_UP_MS } from "./warm-up.js";

const [suiteName, aArg, bArg, inFlightArg, chunkArg, maxSecondsArg] = process.argv.slice(2);
const suite = (await import(`./suites/${suiteName}.ts`)).default as BenchSuite;
const inFlight = Number(inFlightArg);
const chunk = Number(chunkArg);
// Created one after the other: a case's create() may pre-load the data it reads.
const a = await suite.cases[Number(aArg)]!.create();
const b = await suite.cases[Number(bArg)]!.create();
const deadline = performance.now() + Number(maxSecondsArg) * 1000;

let next = 0;
/** Runs `count` operations of one case with `inFlight` workers; returns the milliseconds taken. */
async function timed(target: typeof a, count: number): Promise<number> {
  const start = performance.now();
  let left = count;
  const worker = async () => {
    while (left > 0) {
      left--;
      await target.op(next++);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return performance.now() - start;
}

// Both cases, so both are optimised before the first chunk counts.
const warmUntil = performance.now() + WARM_UP_MS;
while (performance.now() < warmUntil) {
  await timed(a, chunk);
  await timed(b, chunk);
}

// Each pair is A then B or B then A, alternately, so neither always runs right after the other.
const ratios: number[] = [];
while (ratios.length === 0 || performance.now() < deadline) {
  const aFirst = ratios.length % 2 === 0;
  const t1 = await timed(aFirst ? a : b, chunk);
  const t2 = await timed(aFirst ? b : a, chunk);
  ratios.push(aFirst ? t2 / t1 : t1 / t2);
}
await a.close();
// The control runs one case twice, and a library may share one client between its two copies
// (@keyv/postgres keeps a pool per URL), which refuses the second close.
await b.close().catch((err: unknown) => {
  if (aArg !== bArg) throw err;
});
process.stdout.write(`${JSON.stringify({ ratios })}\n`);
process.exit(0);
