import type { ServerResponse } from "node:http";

type Method = "writeHead" | "write" | "end" | "flushHeaders";
const METHODS: readonly Method[] = ["writeHead", "write", "end", "flushHeaders"];

export interface HeaderCommit {
  setCookie: string[];
  headers: Record<string, string | undefined>;
}

/**
 * Runs the async `commit` the first time the response is about to send its
 * headers — `writeHead`, `write`, `end` or `flushHeaders`, whichever comes first,
 * so redirects, `res.send`, `res.end` and piped streams are all covered — and
 * holds those calls back until it settles. On success the cookie headers are
 * added and the held calls replayed in order. On failure nothing of the
 * handler's response has left yet, so `onError` can answer differently (503).
 *
 * Hooking the methods (rather than `on-headers`, which runs synchronously) is
 * what lets an async store write happen before the status line is sent.
 */
export function commitBeforeHeaders(
  res: ServerResponse,
  commit: () => Promise<HeaderCommit>,
  onError: (err: unknown) => void,
): void {
  const original = {} as Record<Method, (...args: unknown[]) => unknown>;
  const own = {} as Record<Method, boolean>;
  for (const m of METHODS) {
    original[m] = (res as unknown as Record<Method, (...args: unknown[]) => unknown>)[m];
    own[m] = Object.hasOwn(res, m);
  }
  let held: Array<[Method, unknown[]]> | undefined;

  const restore = () => {
    for (const m of METHODS) {
      if (own[m]) (res as unknown as Record<Method, unknown>)[m] = original[m];
      else delete (res as unknown as Record<Method, unknown>)[m];
    }
  };

  const answer = (m: Method) => (m === "write" ? true : m === "flushHeaders" ? undefined : res);

  const release = (result: HeaderCommit) => {
    restore();
    const calls = held ?? [];
    held = undefined;
    if (!res.headersSent && !res.destroyed) {
      if (result.setCookie.length > 0) {
        const prior = res.getHeader("set-cookie");
        const list = prior === undefined ? [] : Array.isArray(prior) ? prior : [String(prior)];
        res.setHeader("set-cookie", [...list, ...result.setCookie]);
      }
      for (const [name, value] of Object.entries(result.headers))
        if (value !== undefined) res.setHeader(name, value);
    }
    for (const [m, args] of calls) original[m].apply(res, args);
  };

  const fail = (err: unknown) => {
    restore();
    held = undefined;
    if (res.headersSent) {
      res.destroy(err instanceof Error ? err : undefined);
      return;
    }
    // The handler's headers (a Location, a Content-Type…) belong to the response we are not sending.
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    onError(err);
  };

  for (const m of METHODS) {
    (res as unknown as Record<Method, unknown>)[m] = function (this: ServerResponse, ...args: unknown[]) {
      if (held) {
        held.push([m, args]);
        return answer(m);
      }
      if (res.headersSent) {
        restore();
        return original[m].apply(res, args);
      }
      held = [[m, args]];
      let started: Promise<HeaderCommit>;
      try {
        started = commit();
      } catch (err) {
        started = Promise.reject(err);
      }
      started.then(release, fail);
      return answer(m);
    };
  }
}
