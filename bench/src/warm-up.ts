/**
 * Every measurement warms up for at least this long (child.ts: and a tenth of its operations), so every
 * case is measured with its code optimised: a tenth alone was 30,000 memory-store gets (~12 ms), after
 * which the store read 0.46x the `Map` limit against 0.60x after 1,000,000, while the limit's own figure
 * did not move (alternated runs, 2026-11-29): the short warm-up measured V8 still optimising the larger code.
 */
export const WARM_UP_MS = 1000;
