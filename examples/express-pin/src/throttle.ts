import { type KvStore, withCodec } from "@kvsession/kv";

/** How many PIN attempts a name and an IP get before they must wait, and for how long. */
export const LOGIN_LIMITS = {
  /** Wrong PINs for one name before its first lock: a 4-digit PIN must not be guessable in a burst. */
  perName: 5,
  /** Wrong PINs from one IP, across names, before its first lock (generous: offices share an IP). */
  perIp: 20,
  /** The first lock; each further failure past the limit doubles it. */
  firstLockMs: 30_000,
  maxLockMs: 60 * 60_000,
  /** A counter is forgotten this long after its last change. */
  forgetAfterMs: 24 * 60 * 60_000,
} as const;

interface Counter {
  failures: number;
  /** Epoch ms (of the app's clock) before which no attempt is allowed; 0 when not locked. */
  lockedUntil: number;
}

export type Attempt = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * Failed-attempt counters in the store, shared by every process of the app. An attempt is
 * counted when it starts, with compare-and-set, so parallel guesses cannot all slip in
 * before the first one is recorded; a success then takes it back (`succeeded`).
 */
export function createThrottle(store: KvStore, now: () => number) {
  const counters = withCodec<Counter>(store.withPrefix("throttle:"));
  const ttl = LOGIN_LIMITS.forgetAfterMs;

  /** Applies `change` atomically; `undefined` from it means "leave the counter as it is". */
  async function update(key: string, change: (c: Counter | undefined) => Counter | undefined): Promise<void> {
    for (;;) {
      const { value, version } = await counters.getVersioned(key);
      const next = change(value);
      if (next === undefined || (await counters.compareAndSet(key, version, next, { ttl }))) return;
    }
  }

  return {
    /** Counts an attempt for `key`, whose limit is `limit`; refuses while the key is locked. */
    async take(key: string, limit: number): Promise<Attempt> {
      let result: Attempt = { ok: true };
      await update(key, (c) => {
        const at = now();
        if (c !== undefined && at < c.lockedUntil) {
          result = { ok: false, retryAfterMs: c.lockedUntil - at };
          return undefined;
        }
        result = { ok: true };
        const failures = (c?.failures ?? 0) + 1;
        const past = failures - limit;
        const lockMs = past < 0 ? 0 : Math.min(LOGIN_LIMITS.firstLockMs * 2 ** past, LOGIN_LIMITS.maxLockMs);
        return { failures, lockedUntil: lockMs === 0 ? 0 : at + lockMs };
      });
      return result;
    },
    /** The attempt counted for `key` succeeded: it is not a failure, and sets no lock. */
    async succeeded(key: string): Promise<void> {
      await update(key, (c) =>
        c === undefined ? undefined : { failures: Math.max(0, c.failures - 1), lockedUntil: 0 },
      );
    },
    /** Forgets every failure counted for `key`. */
    async forget(key: string): Promise<void> {
      await counters.delete(key);
    },
  };
}
