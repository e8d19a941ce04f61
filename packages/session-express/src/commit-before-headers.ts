import { ServerResponse } from "node:http";
import { retryableResponse } from "@kvsession/session";

/** The calls that send the head or the body: held while the commit runs. */
type Held = "writeHead" | "write" | "end" | "flushHeaders";
/** The calls that change headers: refused once the app has ended the response (see `late`). */
type HeaderChange = "setHeader" | "appendHeader" | "removeHeader";
type Method = Held | HeaderChange;
type Fn = (...args: unknown[]) => unknown;
const METHODS: readonly Method[] = [
  "writeHead",
  "write",
  "end",
  "flushHeaders",
  "setHeader",
  "appendHeader",
  "removeHeader",
];

export interface HeaderCommit {
  setCookie: string[];
  headers: Record<string, string | undefined>;
}

/** One response's commit in progress. */
interface Pending {
  commit: () => Promise<HeaderCommit>;
  onError: (err: unknown) => void;
  /** The methods to forward to once the commit settles. */
  methods: Record<Method, Fn>;
  /** Calls made while the commit runs, replayed in order once it settles. */
  held: Array<[Held, unknown[]]> | undefined;
  /** The status line when the first call was held: the one the response goes out with. */
  status: number;
  statusMessage: string;
  /** The app ended the response (an `end` is held): for the app it is sent. */
  ended: boolean;
  /**
   * A call after the end was refused: every later call on this response is dropped, even after
   * the commit settled (see `late`).
   */
  closed: boolean;
  /** The commit settled: every hook just forwards (a closed response's hooks drop instead). */
  done: boolean;
  /** Hooked through own properties (to put back when done) rather than through the prototype. */
  own: boolean;
}

/**
 * Per-response state lives here, not on the response: Express swaps the prototype of each
 * response, after which V8 cannot share property transitions, so every property added to `res`
 * builds a new hidden class.
 */
const pending = new WeakMap<object, Pending>();

function settleHooks(res: ServerResponse, p: Pending): void {
  p.done = true;
  // A closed response keeps its own hooks: they drop what Express's error handling still sends.
  if (!p.own || p.closed) return;
  // Only a hook still in place goes: one a later middleware wrapped stays in its chain, forwarding.
  // By assignment, never `delete`: deleting properties turns the response into a slow dictionary-mode object.
  const r = res as unknown as Record<Method, Fn>;
  for (const m of METHODS) if (r[m] === OWN_HOOKS[m]) r[m] = p.methods[m];
}

function release(res: ServerResponse, p: Pending, result: HeaderCommit): void {
  settleHooks(res, p);
  const calls = p.held ?? [];
  p.held = undefined;
  // Our own calls, and those a wrapper under the hooks makes back through them, must pass.
  const closed = p.closed;
  p.closed = false;
  try {
    if (!res.headersSent && !res.destroyed) {
      // A status set after the held calls started would not have reached a response already sent.
      res.statusCode = p.status;
      res.statusMessage = p.statusMessage;
      if (result.setCookie.length > 0) {
        const prior = res.getHeader("set-cookie");
        const list = prior === undefined ? [] : Array.isArray(prior) ? prior : [String(prior)];
        res.setHeader("set-cookie", [...list, ...result.setCookie]);
      }
      for (const name in result.headers) {
        const value = result.headers[name];
        if (value !== undefined) res.setHeader(name, value);
      }
    }
    for (const [m, args] of calls) p.methods[m].apply(res, args);
  } catch (err) {
    // Without the hold this call would have thrown to the handler, and Express would have passed
    // it to next(err): it still does, unless the head is out or Express already had an error here.
    if (res.headersSent || closed) res.destroy(err instanceof Error ? err : undefined);
    else p.onError(err);
  } finally {
    p.closed = closed;
  }
}

function fail(res: ServerResponse, p: Pending, err: unknown): void {
  settleHooks(res, p);
  p.held = undefined;
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  if (p.closed) {
    // Express's error handling already ran for the refused call, and what it sends is dropped:
    // the error answer is written here, through hooks that let it pass.
    p.closed = false;
    try {
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      const retry = retryableResponse(err);
      res.statusCode = retry?.status ?? 500;
      res.setHeader("content-type", "text/plain; charset=utf-8");
      res.setHeader("cache-control", "no-store");
      if (retry !== undefined) res.setHeader("retry-after", retry.headers["retry-after"]);
      res.end(retry?.message ?? "Internal Server Error");
    } finally {
      p.closed = true;
    }
    return;
  }
  // The handler's headers (a Location, a Content-Type…) belong to the response we are not sending.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  p.onError(err);
}

/** The first call starts the commit; every call until it settles is held. */
function intercept(res: ServerResponse, p: Pending, m: Held, args: unknown[]): unknown {
  if (p.held) {
    p.held.push([m, args]);
  } else if (res.headersSent) {
    settleHooks(res, p);
    return p.methods[m].apply(res, args);
  } else {
    p.held = [[m, args]];
    p.status = res.statusCode;
    p.statusMessage = res.statusMessage;
    let started: Promise<HeaderCommit>;
    try {
      started = p.commit();
    } catch (err) {
      started = Promise.reject(err);
    }
    started.then(
      (result) => release(res, p, result),
      (err) => fail(res, p, err),
    );
  }
  if (m === "end") p.ended = true;
  return m === "write" ? true : m === "flushHeaders" ? undefined : res;
}

function headersSentError(m: Method): Error {
  const verb =
    m === "writeHead" ? "write" : m === "appendHeader" ? "append" : m === "removeHeader" ? "remove" : "set";
  return Object.assign(new Error(`Cannot ${verb} headers after they are sent to the client`), {
    code: "ERR_HTTP_HEADERS_SENT",
  });
}

/**
 * A call after the app ended the response, while the response waits for the commit. Without
 * the hold the response would be out already, and Node would refuse a header change
 * (`ERR_HTTP_HEADERS_SENT`, thrown to the caller: what a second `res.send` meets in plain
 * Express) or a write (`ERR_STREAM_WRITE_AFTER_END`). The first such call throws the same
 * error to its caller. Express then hands it to its error handlers; in plain Express their
 * answer could not be sent, and the final handler destroys the socket once headers are out,
 * which here would cut the held response (Express runs it a tick later, when the commit may have
 * sent it). So `headersSent` reads false on this response from then on, and everything sent on
 * it is dropped: the client gets the response the app ended.
 */
function late(res: ServerResponse, p: Pending, m: Method, args: unknown[]): unknown {
  // A bare end() or flushHeaders() on an ended response does nothing in Node either.
  if ((m === "end" && (args[0] === undefined || typeof args[0] === "function")) || m === "flushHeaders")
    return dropped(res, m);
  p.closed = true;
  Object.defineProperty(res, "headersSent", { configurable: true, get: () => false });
  if (m === "write" || m === "end")
    throw Object.assign(new Error("write after end"), { code: "ERR_STREAM_WRITE_AFTER_END" });
  throw headersSentError(m);
}

function dropped(res: ServerResponse, m: Method): unknown {
  return m === "write" ? true : m === "flushHeaders" || m === "removeHeader" ? undefined : res;
}

function dispatch(res: ServerResponse, p: Pending, m: Method, args: unknown[]): unknown {
  if (p.closed) return dropped(res, m);
  if (p.done) return p.methods[m].apply(res, args);
  if (p.ended) return late(res, p, m, args);
  if (m === "setHeader" || m === "appendHeader" || m === "removeHeader") return p.methods[m].apply(res, args);
  return intercept(res, p, m, args);
}

/** Hooks set as own properties of one response: shared functions, state from the WeakMap. */
const OWN_HOOKS = Object.fromEntries(
  METHODS.map((m) => [
    m,
    function (this: ServerResponse, ...args: unknown[]) {
      return dispatch(this, pending.get(this) as Pending, m, args);
    },
  ]),
) as Record<Method, Fn>;

interface ProtoHooks {
  /** What the prototype resolved before the hooks went on. */
  before: Record<Method, Fn>;
  hooks: Record<Method, Fn>;
}
/** Prototypes that carry our hooks. */
const hookedProtos = new WeakMap<object, ProtoHooks>();

/**
 * The prototype to carry the hooks: the response's own prototype when a framework
 * put one between it and `http.ServerResponse.prototype` (Express's `app.response`;
 * a sub-app's inherits from its parent's), hooked once, so a request adds no
 * property to `res`: setting the hooks on each Express response instead costs more
 * than all the rest of the middleware's work. The hooks forward at once for a
 * response with nothing pending. A plain `http` response gets own-property hooks
 * instead (cheap there: no prototype swap), and the built-in prototype is never
 * touched.
 */
function frameworkProto(res: ServerResponse): object | undefined {
  const proto = Object.getPrototypeOf(res) as object | null;
  if (proto === null || proto === ServerResponse.prototype) return undefined;
  return Object.prototype.isPrototypeOf.call(ServerResponse.prototype, proto) ? proto : undefined;
}

function hookProto(proto: object): ProtoHooks {
  let got = hookedProtos.get(proto);
  if (got) return got;
  const target = proto as Record<Method, Fn>;
  const before = {} as Record<Method, Fn>;
  const hooks = {} as Record<Method, Fn>;
  for (const m of METHODS) {
    const orig = target[m];
    before[m] = orig;
    hooks[m] = function (this: ServerResponse, ...args: unknown[]) {
      const p = pending.get(this);
      // A response hooked through own properties reaches this hook only from its own hooks, forwarding.
      if (p === undefined || p.own || (p.done && !p.closed)) return orig.apply(this, args);
      return dispatch(this, p, m, args);
    };
    Object.defineProperty(proto, m, {
      configurable: true,
      writable: true,
      enumerable: false,
      value: hooks[m],
    });
  }
  got = { before, hooks };
  hookedProtos.set(proto, got);
  return got;
}

/**
 * Runs the async `commit` the first time the response is about to send its
 * headers — `writeHead`, `write`, `end` or `flushHeaders`, whichever comes first,
 * so redirects, `res.send`, `res.end` and piped streams are all covered — and
 * holds those calls back until it settles. On success the cookie headers are
 * added and the held calls replayed in order. On failure nothing of the
 * handler's response has left yet, so `onError` can answer differently (503).
 * Once the app has ended the response it is final: a second send throws to its
 * caller as in plain Express, and cannot change or cut short the first (see `late`).
 *
 * Hooking the methods (rather than `on-headers`, which runs synchronously) is
 * what lets an async store write happen before the status line is sent. Under
 * Express the hooks sit on Express's shared response prototype (installed once);
 * when an earlier middleware already wrapped one of the methods on the response
 * itself (compression, say), or on a plain `http` response, they are set on the
 * response, so they always run before the methods they wrap.
 *
 * @example
 * commitBeforeHeaders(res, () => session.commit(), (err) => next(err));
 */
export function commitBeforeHeaders(
  res: ServerResponse,
  commit: () => Promise<HeaderCommit>,
  onError: (err: unknown) => void,
): void {
  // A second commit on one response would take the first one's place and lose it.
  if (pending.has(res)) throw new TypeError("commitBeforeHeaders: this response already has a commit");
  const r = res as unknown as Record<Method, Fn>;
  const proto = frameworkProto(res);
  if (proto !== undefined) {
    const { before, hooks } = hookProto(proto);
    // Unless something shadows a hook — a wrapper an earlier middleware set on the response itself,
    // or a method defined between the response and that prototype: then own hooks, which run first.
    if (
      r.end === hooks.end &&
      r.write === hooks.write &&
      r.writeHead === hooks.writeHead &&
      r.flushHeaders === hooks.flushHeaders &&
      r.setHeader === hooks.setHeader &&
      r.appendHeader === hooks.appendHeader &&
      r.removeHeader === hooks.removeHeader
    ) {
      pending.set(res, newPending(commit, onError, before, false));
      return;
    }
  }
  const methods = {} as Record<Method, Fn>;
  for (const m of METHODS) methods[m] = r[m];
  pending.set(res, newPending(commit, onError, methods, true));
  for (const m of METHODS) r[m] = OWN_HOOKS[m];
}

function newPending(
  commit: () => Promise<HeaderCommit>,
  onError: (err: unknown) => void,
  methods: Record<Method, Fn>,
  own: boolean,
): Pending {
  return {
    commit,
    onError,
    methods,
    held: undefined,
    status: 0,
    statusMessage: "",
    ended: false,
    closed: false,
    done: false,
    own,
  };
}
