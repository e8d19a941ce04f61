import { Agent, request } from "node:http";

export interface Call {
  method: "GET" | "POST";
  path: string;
  /** `name=value` sent as the Cookie header. */
  cookie?: string;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
}

export interface Answer {
  /** 0 when no HTTP answer came (see `error`). */
  status: number;
  body: string;
  /** The `sid=…` pair a Set-Cookie issued, null when it cleared the cookie, undefined when none. */
  cookie: string | null | undefined;
  /** Why no answer came: a Node error code (ECONNREFUSED, ECONNRESET…) or "timeout". */
  error?: string;
}

/** One request as the load saw it. */
export interface Sample {
  /** Start, in ms since the load started. */
  at: number;
  ms: number;
  status: number;
  error?: string;
}

export interface Figures {
  requests: number;
  byStatus: Record<string, number>;
  errors: Record<string, number>;
  maxMs: number;
  p99Ms: number;
  p50Ms: number;
}

export interface LoadOptions {
  base: string;
  /** Virtual users, each on its own keep-alive connection, each running `user` in a loop. */
  connections: number;
  /** Bounds: the load stops at whichever comes first. */
  maxRequests: number;
  maxMs: number;
  /** An answer slower than this counts as error "timeout" (a hang). */
  timeoutMs: number;
  /** One pass of a virtual user: any number of `send`s; called again until the load stops. */
  user(worker: number, send: (call: Call) => Promise<Answer>): Promise<void>;
}

export interface Load {
  /** Resolves with every sample once all users stopped. */
  done: Promise<Sample[]>;
  /** Asks the users to stop at their next `send`. */
  stop(): void;
  /** Ms since the load started. */
  now(): number;
  samples: Sample[];
}

/** Thrown by `send` once a bound is reached, ending the user's loop. */
class Stopped extends Error {}

const SID = /^(sid|__Host-sid|__Secure-sid)=([^;]*)/;

function cookieOf(headers: string[] | undefined): string | null | undefined {
  for (const line of headers ?? []) {
    const m = SID.exec(line);
    if (m) return m[2] === "" || /Max-Age=0/i.test(line) ? null : `${m[1]}=${m[2]}`;
  }
  return undefined;
}

/** One HTTP request, never rejecting: a failure comes back as `status: 0` with the error's kind. */
export function send(base: URL, agent: Agent | undefined, call: Call, timeoutMs: number): Promise<Answer> {
  const body = call.form === undefined ? undefined : new URLSearchParams(call.form).toString();
  const headers: Record<string, string> = {};
  if (call.cookie) headers.cookie = call.cookie;
  if (body !== undefined) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve) => {
    const req = request(
      { host: base.hostname, port: base.port, method: call.method, path: call.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
            cookie: cookieOf(res.headers["set-cookie"]),
          }),
        );
        res.on("error", (e: NodeJS.ErrnoException) =>
          resolve({ status: 0, body: "", cookie: undefined, error: e.code ?? e.message }),
        );
      },
    );
    const timer = setTimeout(
      () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })),
      timeoutMs,
    );
    req.on("close", () => clearTimeout(timer));
    req.on("error", (e: NodeJS.ErrnoException) =>
      resolve({ status: 0, body: "", cookie: undefined, error: e.code ?? e.message }),
    );
    req.end(body);
  });
}

/**
 * A bounded HTTP load (count AND time): `connections` virtual users, each on a keep-alive
 * connection, each running its `user` pass in a loop; every request is sampled (start, latency,
 * status or error kind) so a scenario can cut the run into phases (before, during, after a fault).
 *
 * @example
 * const load = startLoad({ base, connections: 8, maxRequests: 10_000, maxMs: 5_000, timeoutMs: 10_000,
 *   user: async (_w, send) => { await send({ method: "GET", path: "/" }); } });
 * const figures = summarize(await load.done);
 */
export function startLoad(options: LoadOptions): Load {
  const base = new URL(options.base);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const started = performance.now();
  const now = () => performance.now() - started;
  const samples: Sample[] = [];
  let stopped = false;
  const bounded = async (call: Call): Promise<Answer> => {
    if (stopped || samples.length >= options.maxRequests || now() >= options.maxMs) throw new Stopped();
    const at = now();
    const sample: Sample = { at, ms: 0, status: 0 };
    samples.push(sample);
    const answer = await send(base, agent, call, options.timeoutMs);
    sample.ms = now() - at;
    sample.status = answer.status;
    if (answer.error !== undefined) sample.error = answer.error;
    return answer;
  };
  const loop = async (worker: number) => {
    for (;;) {
      try {
        await options.user(worker, bounded);
      } catch (e) {
        if (e instanceof Stopped) return;
        throw e;
      }
    }
  };
  const done = Promise.all(Array.from({ length: options.connections }, (_, w) => loop(w))).then(
    () => samples,
    (e) => Promise.reject(e),
  );
  void done.finally(() => agent.destroy()).catch(() => {});
  return {
    done,
    samples,
    now,
    stop() {
      stopped = true;
    },
  };
}

/** Requests, statuses, error kinds and latency of the samples. */
export function summarize(picked: Sample[]): Figures {
  const byStatus: Record<string, number> = {};
  const errors: Record<string, number> = {};
  for (const s of picked) {
    if (s.error !== undefined) errors[s.error] = (errors[s.error] ?? 0) + 1;
    else byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
  }
  const ms = picked.map((s) => s.ms).sort((a, b) => a - b);
  const at = (q: number) =>
    ms.length === 0 ? 0 : Math.round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!);
  return {
    requests: picked.length,
    byStatus,
    errors,
    maxMs: Math.round(ms.at(-1) ?? 0),
    p99Ms: at(0.99),
    p50Ms: at(0.5),
  };
}
