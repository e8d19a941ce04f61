import type { KvStore } from "@kvsession/kv";
import { slotOf } from "../src/slots.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One operation of the load: when it settled, on which side of the fault, and how. */
export interface Outcome {
  at: number;
  /** Its key lives on the shard whose master the test takes down. */
  faulted: boolean;
  write: boolean;
  ok: boolean;
  error?: string;
}

export interface Load {
  outcomes: Outcome[];
  /** Last value each key's writer saw acknowledged. */
  acked: Map<string, number>;
  /**
   * Acknowledged writes a later read of the same key did not see (the writer reads its key before
   * each write, as a session handler does): lost even when a later write covers them up.
   */
  lost: string[];
  stop(): Promise<void>;
}

/**
 * Steady load on `store`: `workers` loops, each reading and then writing its own keys in turn (a
 * counter per key, so a read tells whether the last acknowledged write survived), and reading
 * another worker's key alongside. The workers' operations are issued in the same turns, so the
 * store batches them across shards. Bounded by `maxMs`.
 */
export function startLoad(
  store: KvStore,
  o: { namespace: string; workers: number; keysPerWorker: number; faultedSlots: Set<number>; maxMs: number },
): Load {
  const outcomes: Outcome[] = [];
  const acked = new Map<string, number>();
  const lost: string[] = [];
  const keys = Array.from({ length: o.workers * o.keysPerWorker }, (_, i) => `s${i}`);
  const faulted = (key: string) => o.faultedSlots.has(slotOf(o.namespace + key));
  let stopped = false;
  const until = Date.now() + o.maxMs;
  const FAILED = Symbol("failed");
  const note = <T>(key: string, write: boolean, p: Promise<T>): Promise<T | typeof FAILED> =>
    p.then(
      (v) => {
        outcomes.push({ at: Date.now(), faulted: faulted(key), write, ok: true });
        return v;
      },
      (e: unknown) => {
        const error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        outcomes.push({ at: Date.now(), faulted: faulted(key), write, ok: false, error });
        return FAILED;
      },
    );
  const worker = async (w: number) => {
    const mine = keys.slice(w * o.keysPerWorker, (w + 1) * o.keysPerWorker);
    const counters = new Map<string, number>();
    for (let i = 0; !stopped && Date.now() < until; i++) {
      const key = mine[i % mine.length] as string;
      const other = keys[(w * o.keysPerWorker + i * 7 + 3) % keys.length] as string;
      const [own, theirs] = await Promise.all([
        note(key, false, store.get(key)),
        note(other, false, store.get(other)),
      ]);
      const before = acked.get(key) ?? 0;
      if (own !== FAILED && Number(dec(own) ?? 0) < before) {
        lost.push(`${key}: read ${dec(own)}, acknowledged ${before}`);
      }
      const n = (counters.get(key) ?? 0) + 1;
      counters.set(key, n);
      const wrote = await note(key, true, store.set(key, enc(String(n))));
      if (wrote !== FAILED) acked.set(key, n);
      await sleep(wrote !== FAILED && own !== FAILED && theirs !== FAILED ? 5 : 25);
    }
  };
  const running = Promise.all(Array.from({ length: o.workers }, (_, w) => worker(w)));
  return {
    outcomes,
    acked,
    lost,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

/** Keys whose stored counter is behind the last one acknowledged: acknowledged writes lost. */
export async function lostWrites(store: KvStore, acked: Map<string, number>): Promise<string[]> {
  const lost: string[] = [];
  for (const [key, n] of acked) {
    const stored = Number(dec(await store.get(key)) ?? 0);
    if (stored < n) lost.push(`${key}: stored ${stored}, acknowledged ${n}`);
  }
  return lost;
}

/** The figures of one fault, from the outcomes of a load. */
export function summarize(outcomes: Outcome[], faultAt: number, promotedAt: number) {
  const during = outcomes.filter((x) => x.at >= faultAt);
  const failedFaulted = during.filter((x) => x.faulted && !x.ok);
  const failedHealthy = during.filter((x) => !x.faulted && !x.ok);
  const lastFailure = failedFaulted.reduce((m, x) => Math.max(m, x.at), faultAt);
  const firstOkAfterPromotion = during.find((x) => x.faulted && x.ok && x.at >= promotedAt)?.at;
  return {
    ops: during.length,
    faultedShardFailures: failedFaulted.length,
    healthyShardFailures: failedHealthy.length,
    healthyErrors: [...new Set(failedHealthy.map((x) => x.error))].slice(0, 3),
    errorWindowMs: failedFaulted.length === 0 ? 0 : lastFailure - (failedFaulted[0]?.at ?? faultAt),
    lastFailureAfterPromotionMs: lastFailure - promotedAt,
    firstSuccessAfterPromotionMs:
      firstOkAfterPromotion === undefined ? undefined : firstOkAfterPromotion - promotedAt,
    faultedErrors: [...new Set(failedFaulted.map((x) => x.error?.split(":")[0]))],
  };
}
