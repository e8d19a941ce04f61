import { ServerResponse } from "node:http";

type Method = "writeHead" | "write" | "end" | "flushHeaders";
type Fn = (...args: unknown[]) => unknown;
const METHODS: readonly Method[] = ["writeHead", "write", "end", "flushHeaders"];

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
  held: Array<[Method, unknown[]]> | undefined;
  /** The commit settled: every hook just forwards. */
  done: boolean;
  /** Hooked through own properties (to put back when done) rather than through the prototype. */
  own: boolean;
}

/**
 * Per-response state lives here, not on the response: in Express every property
 * added to `res` costs a new hidden class (Express swaps the prototype of each
 * response, which stops V8 sharing property transitions), ~5 µs each, measured.
 */
const pending = new WeakMap<object, Pending>();

function settleHooks(res: ServerResponse, p: Pending): void {
  p.done = true;
  if (!p.own) return;
  // By assignment, never `delete`: deleting properties turns the response into a slow dictionary-mode object.
  const r = res as unknown as Record<Method, Fn>;
  for (const m of METHODS) r[m] = p.methods[m];
}

function release(res: ServerResponse, p: Pending, result: HeaderCommit): void {
  settleHooks(res, p);
  const calls = p.held ?? [];
  p.held = undefined;
  if (!res.headersSent && !res.destroyed) {
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
}

function fail(res: ServerResponse, p: Pending, err: unknown): void {
  settleHooks(res, p);
  p.held = undefined;
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  // The handler's headers (a Location, a Content-Type…) belong to the response we are not sending.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  p.onError(err);
}

/** The first call starts the commit; every call until it settles is held. */
function intercept(res: ServerResponse, p: Pending, m: Method, args: unknown[]): unknown {
  if (p.held) {
    p.held.push([m, args]);
  } else if (res.headersSent) {
    settleHooks(res, p);
    return p.methods[m].apply(res, args);
  } else {
    p.held = [[m, args]];
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
  return m === "write" ? true : m === "flushHeaders" ? undefined : res;
}

/** Hooks set as own properties of one response: shared functions, state from the WeakMap. */
const OWN_HOOKS = Object.fromEntries(
  METHODS.map((m) => [
    m,
    function (this: ServerResponse, ...args: unknown[]) {
      const p = pending.get(this) as Pending;
      if (p.done) return p.methods[m].apply(this, args);
      return intercept(this, p, m, args);
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
 * property to `res`. The hooks forward at once for a response with nothing pending.
 * A plain `http` response gets own-property hooks instead (cheap there: no
 * prototype swap), and the built-in prototype is never touched.
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
      if (p === undefined || p.done) return orig.apply(this, args);
      return intercept(this, p, m, args);
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
 *
 * Hooking the methods (rather than `on-headers`, which runs synchronously) is
 * what lets an async store write happen before the status line is sent. Under
 * Express the hooks sit on Express's shared response prototype (installed once);
 * when an earlier middleware already wrapped one of the methods on the response
 * itself (compression, say), or on a plain `http` response, they are set on the
 * response, so they always run before the methods they wrap.
 */
export function commitBeforeHeaders(
  res: ServerResponse,
  commit: () => Promise<HeaderCommit>,
  onError: (err: unknown) => void,
): void {
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
      r.flushHeaders === hooks.flushHeaders
    ) {
      pending.set(res, { commit, onError, methods: before, held: undefined, done: false, own: false });
      return;
    }
  }
  pending.set(res, {
    commit,
    onError,
    methods: { writeHead: r.writeHead, write: r.write, end: r.end, flushHeaders: r.flushHeaders },
    held: undefined,
    done: false,
    own: true,
  });
  r.writeHead = OWN_HOOKS.writeHead;
  r.write = OWN_HOOKS.write;
  r.end = OWN_HOOKS.end;
  r.flushHeaders = OWN_HOOKS.flushHeaders;
}
