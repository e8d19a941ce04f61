// The part of autocannon's API this benchmark uses (no @types/autocannon is installed here).
declare module "autocannon" {
  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      setupRequest?: (
        req: Record<string, unknown>,
        context: Record<string, unknown>,
      ) => Record<string, unknown>;
    }
    interface Options {
      url: string;
      connections?: number;
      duration?: number;
      /** Stop after this many requests in all (spread evenly over the connections) instead of `duration`. */
      amount?: number;
      headers?: Record<string, string>;
      /** Milliseconds between the samples of `requests`; the run's result comes at the next sample after the end. */
      sampleInt?: number;
      requests?: Request[];
    }
    interface Histogram {
      average: number;
      p99: number;
      /** Present on `requests`: every request answered during the run. */
      total: number;
    }
    interface Result {
      requests: Histogram;
      latency: Histogram;
      errors: number;
      timeouts: number;
      non2xx: number;
    }
    /** The running load: a promise of its result that also reports each response as it comes. */
    interface Instance extends PromiseLike<Result> {
      on(
        event: "response",
        listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void,
      ): this;
    }
  }
  function autocannon(options: autocannon.Options): autocannon.Instance;
  export default autocannon;
}
