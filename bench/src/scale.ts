// Shared by the suites that measure one case over a small and a big stored data set.
import type { BenchCase } from "./types.js";

export const SCALES = [10_000, 1_000_000];

export const scaleLabel = (count: number) =>
  count >= 1_000_000 ? `${count / 1_000_000}M keys` : `${count / 1000}k keys`;

/**
 * Visits a permutation of the whole key space (7919 is prime, so coprime with the counts used):
 * consecutive operations land far apart, so caches do not flatter the big data set.
 */
export const scatteredKey = (count: number) => (i: number) => `k${(i * 7919) % count}`;

export type KvApi = { get(k: string): Promise<unknown>; set(k: string, v: Uint8Array): Promise<unknown> };
export type Opened = { api: KvApi; close(): Promise<void> };

/** Ops over a data set pre-loaded once per run (by the suite's prepare), so the cases only connect. */
export function scaleCases(
  sides: { name: string; role: BenchCase["role"]; open(count: number): Promise<Opened> }[],
): BenchCase[] {
  const value = Buffer.alloc(100, 7);
  return (["get", "set"] as const).flatMap((op) =>
    SCALES.flatMap((count) =>
      sides.map(
        (side): BenchCase => ({
          name: side.name,
          role: side.role,
          variant: `${op} 100 B`,
          scale: scaleLabel(count),
          async create() {
            const { api, close } = await side.open(count);
            const key = scatteredKey(count);
            return {
              op: op === "get" ? (i) => api.get(key(i)) : (i) => api.set(key(i), value),
              close,
            };
          },
        }),
      ),
    ),
  );
}

/** Runs fn and resolves with how many seconds it took. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

/** Writes keys k0..k(count-1) through setMany in batches, the way a big store gets filled. */
export async function preloadMany(
  store: { setMany(w: { key: string; value: Uint8Array }[]): Promise<void> },
  count: number,
  batch: number,
): Promise<void> {
  const value = Buffer.alloc(100, 7);
  for (let i = 0; i < count; i += batch)
    await store.setMany(
      Array.from({ length: Math.min(batch, count - i) }, (_, j) => ({ key: `k${i + j}`, value })),
    );
}
