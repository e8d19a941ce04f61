/**
 * Every measurement warms up for at least this long (child.ts: and a tenth of its operations), so every
 * case is measured with its code optimised: a tenth of a quick run's operations alone is over in a few
 * milliseconds, and then measured a larger store while V8 was still optimising it, not the store.
 */
export const WARM_UP_MS = 1000;
