/** One thing being measured: created fresh in its own child process for every measurement. */
export interface BenchCase {
  name: string;
  /**
   * "limit": the raw client doing what a user would otherwise write (the ceiling); "peer": the library
   * we are compared to, used the way its own users use it; "reference": a diagnostic row shown with its
   * ratios but never the base of one.
   */
  role: "ours" | "limit" | "peer" | "reference";
  /** Cases with the same variant ("get 100 B") are compared with each other. Default: "". */
  variant?: string;
  /**
   * How much data the case runs over ("10k keys"), for cases of one variant that differ only in
   * that: ratios are taken between cases of the same scale, and a table shows each case's ops/s at
   * every scale side by side. Default: none.
   */
  scale?: string;
  /**
   * For an "ours" case: the name of the limit case it is measured against, when a variant has
   * several (the raw client doing exactly our commands, and the raw client doing the plain ones).
   * Default: the variant's first limit case.
   */
  limit?: string;
  /**
   * For an "ours" case: which of the suite's targets it is judged by. Default: all. A case storing
   * raw bytes is judged against the raw client; one storing what the peer's users store (strings,
   * objects, through a codec) against the peer.
   */
  judge?: Array<"limit" | "peer">;
  create(): Promise<{ op(i: number): Promise<unknown>; close(): Promise<void> }>;
}

export type Targets = Partial<Record<"limit" | "peer", number>>;

export interface BenchSuite {
  title: string;
  /**
   * Operations in flight at once; one measurement per value, each worker starting its next operation
   * as soon as its last one settles (continuously that many in flight).
   */
  inFlight: number[];
  /**
   * Concurrencies measured a second time driven the other common way: `await Promise.all` over a
   * batch of that many operations, then the next batch (in flight drops as a batch drains).
   */
  batches?: number[];
  /** Operations per measurement (after a warm-up of a tenth of that, and at least 1 s). */
  ops: number;
  /** Text placed under the suite's table in docs/benchmarks.md (method, targets). */
  notes?: string;
  /**
   * Targets checked and reported (never asserted): ratio of "ours" to role, e.g. { limit: 0.5, peer: 3 },
   * or a function giving them per variant and concurrency (an issue's target may hold only at 64 in
   * flight, or differ by value size).
   */
  targets?: Targets | ((variant: string, inFlight: number) => Targets);
  cases: BenchCase[];
  /**
   * Concurrencies whose target verdicts come from both cases measured in one process, alternating
   * chunks of `chunk` operations (`pair-child.ts`), rather than from the medians of separate
   * processes: for latency-bound rows, where two processes of the same case differ by more than the
   * difference being judged. The separate-process figures stay in the table.
   */
  interleaved?: { inFlight: number[]; chunk: number };
  /**
   * Runs once in the harness process before the suite's first measurement (start a private
   * server, pre-load a big data set); state reaches the measurement processes through
   * `process.env`, which they inherit.
   */
  prepare?(): Promise<void>;
  /** Runs once after the suite's last measurement, also when a measurement failed. */
  finish?(): Promise<void>;
}

export type Pattern = "continuous" | "batches";

export interface Measurement {
  suite: string;
  variant: string;
  inFlight: number;
  pattern: Pattern;
  name: string;
  role: BenchCase["role"];
  scale?: string;
  limit?: string;
  judge?: BenchCase["judge"];
  opsPerSec: number[];
  /** Per target role, from interleaved runs (see `BenchSuite.interleaved`). */
  interleaved?: Partial<Record<"limit" | "peer", Interleaved>>;
}

export interface Interleaved {
  /** Ours ÷ the other, per pair of chunks, over every run. */
  ratios: number[];
  /** The median of each run's ratios. */
  runs: number[];
  /** The other case against a second copy of itself, the same way: what the method reads for equals. */
  control: number[];
}
