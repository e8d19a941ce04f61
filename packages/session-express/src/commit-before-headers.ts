import type { ServerResponse } from "node:http";

type Method = "writeHead" | "write" | "end" | "flushHeaders";
type Fn = (...args: unknown[]) => unknown;

export interface HeaderCommit {
  setCookie: string[];
  headers: Record<string, string | undefined>;
}

/** What one response's hooks need; the hooks themselves are shared by every response. */
interface Pending {
  commit: () => Promise<HeaderCommit>;
  onError: (err: unknown) => void;
  /** The methods as the response had them (its class's, or a wrapper another middleware put on it). */
  writeHead: Fn;
  write: Fn;
  end: Fn;
  flushHeaders: Fn;
  /** Calls made while the commit runs, replayed in order once it settles. */
  held: Array<[Method, unknown[]]> | undefined;
  /** The methods are back: a hook still called (through a reference someone kept) just forwards. */
  done: boolean;
}

const PENDING = Symbol("kvsession.commitBeforeHeaders");
type Hooked = ServerResponse & { [PENDING]?: Pending };

/**
 * Puts the response's own methods back — by assignment, never `delete`: deleting
 * properties turns the response into a slow dictionary-mode object for the rest
 * of the request (measured).
 */
function restore(res: Hooked, p: Pending): void {
  const r = res as unknown as Record<Method, Fn>;
  r.writeHead = p.writeHead;
  r.write = p.write;
  r.end = p.end;
  r.flushHeaders = p.flushHeaders;
  p.done = true;
}

function release(res: Hooked, p: Pending, result: HeaderCommit): void {
  restore(res, p);
  const calls = p.held ?? [];
  p.held = undefined;
  if (!res.headersSent && !res.destroyed) {
    if (result.setCookie.length > 0) {
      const prior = res.getHeader("set-cookie");
      const list = prior === undefined ? [] : Array.isArray(prior) ? prior : [String(prior)];
      res.setHeader("set-cookie", [...list, ...result.setCookie]);
    }
    for (const [name, value] of Object.entries(result.headers))
      if (value !== undefined) res.setHeader(name, value);
  }
  for (const [m, args] of calls) p[m].apply(res, args);
}

function fail(res: Hooked, p: Pending, err: unknown): void {
  restore(res, p);
  p.held = undefined;
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  // The handler's headers (a Location, a Content-Type…) belong to the response we are not sending.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  p.onError(err);
}

/** One shared hook per method: the first call starts the commit, every call until it settles is held. */
function hook(m: Method): Fn {
  return function (this: Hooked, ...args: unknown[]) {
    const p = this[PENDING] as Pending;
    if (p.done) return p[m].apply(this, args);
    if (p.held) {
      p.held.push([m, args]);
    } else if (this.headersSent) {
      restore(this, p);
      return p[m].apply(this, args);
    } else {
      p.held = [[m, args]];
      let started: Promise<HeaderCommit>;
      try {
        started = p.commit();
      } catch (err) {
        started = Promise.reject(err);
      }
      started.then(
        (result) => release(this, p, result),
        (err) => fail(this, p, err),
      );
    }
    return m === "write" ? true : m === "flushHeaders" ? undefined : this;
  };
}

const HOOKS: Record<Method, Fn> = {
  writeHead: hook("writeHead"),
  write: hook("write"),
  end: hook("end"),
  flushHeaders: hook("flushHeaders"),
};

/**
 * Runs the async `commit` the first time the response is about to send its
 * headers — `writeHead`, `write`, `end` or `flushHeaders`, whichever comes first,
 * so redirects, `res.send`, `res.end` and piped streams are all covered — and
 * holds those calls back until it settles. On success the cookie headers are
 * added and the held calls replayed in order. On failure nothing of the
 * handler's response has left yet, so `onError` can answer differently (503).
 *
 * Hooking the methods (rather than `on-headers`, which runs synchronously) is
 * what lets an async store write happen before the status line is sent. The
 * hooks are shared functions and the per-response state one object, because
 * this runs on every request.
 */
export function commitBeforeHeaders(
  res: ServerResponse,
  commit: () => Promise<HeaderCommit>,
  onError: (err: unknown) => void,
): void {
  const r = res as Hooked;
  const own = res as unknown as Record<Method, Fn>;
  r[PENDING] = {
    commit,
    onError,
    writeHead: own.writeHead,
    write: own.write,
    end: own.end,
    flushHeaders: own.flushHeaders,
    held: undefined,
    done: false,
  };
  own.writeHead = HOOKS.writeHead;
  own.write = HOOKS.write;
  own.end = HOOKS.end;
  own.flushHeaders = HOOKS.flushHeaders;
}
