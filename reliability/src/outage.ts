import type { AppProcess } from "./app-process.js";
import { type Call, type Figures, type Sample, send, startLoad, summarize } from "./load.js";
import { sized } from "./mode.js";
import { inParallel, openSession, readBack, saveProfile, type Tracked } from "./pin-client.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const OK = new Set([200, 303]);

export interface OutageRun {
  /** Sessions with a name, written before the store went down. */
  before: number;
  /** Every session whose creation (and last name) the server acknowledged, at any time. */
  acknowledged: number;
  lost: string[];
  steady: Figures;
  /** Requests still waiting when the fault began, or started while it was being applied. */
  inFlight: Figures;
  outage: Figures;
  /** From the store's return to the first successful request. */
  recoveredAfterMs: number;
  recovered: Figures;
  outageMs: number;
  samples: Sample[];
}

/**
 * The store-outage scenario against the running demo: M sessions written, then an HTTP load
 * (reads, profile writes, new sessions) during which `down()` takes the store away for the
 * outage window and `up()` brings it back; then every acknowledged session is read back.
 *
 * @example
 * const run = await storeOutage(app, { down: () => redis.kill(), up: () => redis.start() });
 */
export async function storeOutage(
  app: AppProcess,
  fault: { down(): Promise<void>; up(): Promise<void> },
): Promise<OutageRun> {
  const acked: Tracked[] = [];
  const before: Tracked[] = [];
  const steadyMs = sized(1500, 10_000);
  const outageMs = sized(3000, 30_000);
  const afterMs = sized(5000, 30_000);
  // The sessions that must survive: created and named before the fault, one request at a time per connection.
  const m = sized(200, 2000);
  const url = new URL(app.base);
  await inParallel(8, m, async (i) => {
    const s = (c: Call) => send(url, undefined, c, 30_000);
    const t = await openSession(s);
    if (t === undefined) throw new Error(`session ${i} could not be created before the outage`);
    const a = await saveProfile(s, t, `m${i}`, String(1000 + (i % 9000)));
    if (a.status !== 303) throw new Error(`session ${i}: profile answered ${a.status} before the outage`);
    before.push(t);
  });
  acked.push(...before);

  let pick = 0;
  const load = startLoad({
    base: app.base,
    connections: 8,
    maxRequests: sized(100_000, 2_000_000),
    maxMs: steadyMs + outageMs + afterMs + 30_000,
    timeoutMs: 30_000,
    async user(w, call) {
      const t = before[pick++ % before.length]!;
      if (w % 4 === 0) {
        const fresh = await openSession(call);
        if (fresh) acked.push(fresh);
      } else if (w % 4 === 1) {
        // Same name, a new PIN: the name read back stays checkable whatever the outcome.
        await call({
          method: "POST",
          path: "/profile",
          cookie: t.cookie,
          form: { _csrf: t.csrf, name: t.name!, pin: String(1000 + (pick % 9000)) },
        });
      } else {
        await call({ method: "GET", path: "/", cookie: t.cookie });
      }
    },
  });
  await sleep(steadyMs);
  const downAt = load.now();
  await fault.down();
  const downDone = load.now();
  await sleep(outageMs);
  const upStart = load.now();
  await fault.up();
  const upAt = load.now();
  await sleep(afterMs);
  load.stop();
  const samples = await load.done;
  const firstOk = samples.find((s) => s.at >= upAt && OK.has(s.status))?.at ?? Number.POSITIVE_INFINITY;
  const { lost } = await readBack(app.base, acked);
  return {
    before: before.length,
    acknowledged: acked.length,
    lost,
    steady: summarize(samples.filter((s) => s.at + s.ms < downAt)),
    inFlight: summarize(samples.filter((s) => s.at < downDone && s.at + s.ms >= downAt)),
    outage: summarize(samples.filter((s) => s.at >= downDone && s.at < upStart)),
    recoveredAfterMs: Math.round(firstOk - upAt),
    // From one second after the first success: the app must be fully back by then.
    recovered: summarize(samples.filter((s) => s.at >= firstOk + 1000)),
    outageMs: Math.round(upAt - downAt),
    samples,
  };
}
