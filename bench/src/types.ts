/** One thing being measured: created fresh in its own child process for every measurement. */
export interface BenchCase {
  name: string;
  /** "limit": the raw client doing the same work (the ceiling); "peer": the library we are compared to. */
  role: "ours" | "limit" | "peer";
  /** Cases with the same variant ("get 100 B") are compared with each other. Default: "". */
  variant?: string;
  create(): Promise<{ op(i: number): Promise<unknown>; close(): Promise<void> }>;
}

export interface BenchSuite {
  title: string;
  /** Operations in flight at once; one measurement per value. */
  inFlight: number[];
  /** Operations per measurement (after a warm-up of a tenth of that). */
  ops: number;
  /** Text placed under the suite's table in docs/benchmarks.md (method, targets). */
  notes?: string;
  /** Targets checked and reported (never asserted): ratio of "ours" to role, e.g. { limit: 0.5, peer: 3 }. */
  targets?: Partial<Record<"limit" | "peer", number>>;
  cases: BenchCase[];
}

export interface Measurement {
  suite: string;
  variant: string;
  inFlight: number;
  name: string;
  role: BenchCase["role"];
  opsPerSec: number[];
}
