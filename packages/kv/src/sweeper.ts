export interface SweeperOptions {
  /** Delete at most `batch` expired entries and resolve with how many were deleted. */
  sweep: (batch: number, now: number) => Promise<number> | number;
  /** Pause between sweeps when the last one found less than a full batch, in ms. Default 1000. */
  intervalMs?: number;
  /** Most entries one tick deletes, so a huge backlog never blocks the event loop. Default 500. */
  batch?: number;
  /** Sweep errors (engine down…) are reported here and never thrown; the next tick tries again. */
  onError?: (error: unknown) => void;
}

export interface Sweeper {
  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void>;
  /** Runs one tick now (tests, and drivers that want to sweep on open). */
  runOnce(): Promise<number>;
}

/**
 * The bounded background reclamation shared by every driver without native
 * expiry: one batch per tick on an unref'd timer, the next tick soon after a
 * full batch (a backlog drains fast without hogging the loop), never two at once.
 *
 * @example
 * const sweeper = startSweeper({ sweep: (n, now) => deleteExpired.run(now, n).changes });
 * // in close(): await sweeper.stop();
 */
export function startSweeper(options: SweeperOptions): Sweeper {
  const interval = options.intervalMs ?? 1000;
  const batch = options.batch ?? 500;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  function schedule(ms: number): void {
    if (stopped) return;
    timer = setTimeout(tick, ms);
    timer.unref();
  }
  async function once(): Promise<number> {
    if (running) return running;
    running = (async () => {
      try {
        return await options.sweep(batch, Date.now());
      } catch (error) {
        options.onError?.(error);
        return 0;
      } finally {
        running = undefined;
      }
    })();
    return running;
  }
  async function tick(): Promise<void> {
    const n = await once();
    schedule(n >= batch ? 1 : interval);
  }
  schedule(interval);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (running) await running;
    },
    runOnce: once,
  };
}

/** The sweep options every driver without native expiry offers its users; each driver documents its defaults. */
export interface DriverSweepOptions {
  /** Expired entries deleted per sweep tick. */
  sweepBatch?: number;
  /** Pause between sweeps when the last one found less than a full batch, in ms. `false` disables the sweeper. */
  sweepIntervalMs?: number | false;
  /** Sweep failures (engine down, database locked…) are reported here; the next tick retries. Default: ignored. */
  onSweepError?: (error: unknown) => void;
}

/**
 * Starts a driver's sweeper from its users' `DriverSweepOptions` and the driver's own defaults, or
 * returns undefined when the user turned sweeping off.
 *
 * @example
 * const sweeper = startDriverSweeper(options, { intervalMs: 10_000, batch: 500 }, (n, now) => deleteExpired(now, n));
 */
export function startDriverSweeper(
  options: DriverSweepOptions,
  defaults: { intervalMs: number; batch: number },
  sweep: SweeperOptions["sweep"],
): Sweeper | undefined {
  if (options.sweepIntervalMs === false) return undefined;
  return startSweeper({
    intervalMs: options.sweepIntervalMs ?? defaults.intervalMs,
    batch: options.sweepBatch ?? defaults.batch,
    sweep,
    onError: options.onSweepError ?? (() => {}),
  });
}
