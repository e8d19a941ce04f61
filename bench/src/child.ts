// One measurement, in a process of its own so JIT state, GC pressure and
// open connections of one case never leak into the next.
import { performance } from "node:perf_hooks";
import type { BenchSuite } from "./types.js";
import { WARM_UP_MS } from "./warm-up.js";

const [suiteName, caseIndex, inFlightArg, opsArg, maxSecondsArg, patternArg] = process.argv.slice(2);
const suite = (await import(`./suites/${suiteName}.ts`)).default as BenchSuite;
const c = suite.cases[Number(caseIndex)]!;
const inFlight = Number(inFlightArg);
const ops = Number(opsArg);
const target = await c.create();
// From here, not from the start: a case's create() pre-loads its data (seconds for some), and a deadline
// that counted it left slow-loading cases no time to measure (0 operations, read as infinitely faster).
const deadline = performance.now() + Number(maxSecondsArg) * 1000;

/** `inFlight` workers, each starting its next operation as soon as its last one settles. */
async function continuous(count: number, offset: number, until = 0): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while ((next < count || performance.now() < until) && performance.now() < deadline) {
      const i = offset + next++;
      await target.op(i);
      done++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return done;
}

/** `await Promise.all` over `inFlight` operations, then the next batch. */
async function batches(count: number, offset: number, until = 0): Promise<number> {
  let done = 0;
  while ((done < count || performance.now() < until) && performance.now() < deadline) {
    const first = offset + done;
    await Promise.all(Array.from({ length: inFlight }, (_, j) => target.op(first + j)));
    done += inFlight;
  }
  return done;
}

const drive = patternArg === "batches" ? batches : continuous;
await drive(Math.max(100, Math.floor(ops / 10)), 0, performance.now() + WARM_UP_MS);
const start = performance.now();
const done = await drive(ops, 1_000_000);
const seconds = (performance.now() - start) / 1000;
await target.close();
if (done === 0)
  throw new Error(`${c.name}: no operation was measured before the deadline; raise --max-seconds`);
process.stdout.write(`${JSON.stringify({ opsPerSec: done / seconds, done })}\n`);
process.exit(0);
