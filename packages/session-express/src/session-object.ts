import type { JsonValue } from "@kvsession/kv";
import {
  type CookieLifetimeKey,
  cookieLifetimeProperties,
  type Session,
  type SessionData,
} from "@kvsession/session";

/** Node-style callback, as express-session's methods take. */
export type Callback = (err?: unknown) => void;

/**
 * `req.session.cookie`: the session cookie as the app configured it, and this session's lifetime,
 * which the app may change per session as with express-session ("remember me"). Assigning
 * `maxAge`/`originalMaxAge` (ms, or `null` for a browser-session cookie) or `expires` (a `Date`, or
 * `null`/`false`) gives this session its own lifetime, kept with the session: later responses and a
 * `regenerate()` keep issuing the cookie with it, re-sent with a fresh Max-Age whenever the session
 * is written. It never reaches past `absoluteTimeoutMs`; a longer, negative or non-integer value is
 * a `SessionDataError`. An attribute the app left to the core's default reads `undefined`.
 *
 * @example
 * app.post("/login", async (req, res) => {
 *   await bindUser(req, user.id);
 *   if (req.body.remember) req.session.cookie.maxAge = 30 * 24 * 3600_000; // needs an absoluteTimeoutMs at least as long
 *   res.redirect(303, "/");
 * });
 */
export interface SessionCookieInfo {
  /**
   * This session's lifetime in ms; `null` for a browser-session cookie; `undefined` for a
   * persistent cookie with the core's default lifetime (`absoluteTimeoutMs`).
   */
  maxAge: number | null | undefined;
  /** Now plus `maxAge`; `null` for a browser-session cookie; `undefined` when `maxAge` is. */
  expires: Date | null | false | undefined;
  /** The same as `maxAge` (express-session keeps the value last assigned here). */
  originalMaxAge: number | null | undefined;
  readonly httpOnly: true;
  readonly path: string | undefined;
  readonly domain: string | undefined;
  /** Whether this response's cookie is Secure. */
  readonly secure: boolean;
  readonly sameSite: string | undefined;
}

/**
 * What `req.session` is: the session data as plain properties (read and assign
 * them synchronously, as with express-session) plus express-session's methods,
 * each taking an optional callback and returning a promise.
 */
export interface ExpressSession {
  /** The store handle of the session (SHA-256 of the secret ID, safe to log); `undefined` before it is stored. */
  readonly id: string | undefined;
  readonly cookie: SessionCookieInfo;
  /** New ID AND empty data, as in express-session; `req.session` is a new object afterwards. */
  regenerate(callback?: Callback): Promise<void>;
  /** Deletes the session in the store now; `req.session` is gone and the response clears the cookie. */
  destroy(callback?: Callback): Promise<void>;
  /** Drops this request's unsaved changes and reads the stored data again. */
  reload(callback?: Callback): Promise<void>;
  /** Writes the changes now (the middleware does it anyway before the headers go out). */
  save(callback?: Callback): Promise<void>;
  /** Refreshes the last-seen time at commit even if the throttle would skip it. */
  touch(callback?: Callback): Promise<void>;
  /** Asks for the session to be written at the end of the request, which re-sends a cookie with its own lifetime with a fresh Max-Age. */
  resetMaxAge(): ExpressSession;
  // Session data: any JSON value under a string key.
  [key: string]: unknown;
}

/** The part of the middleware's configuration a session object needs. */
export interface SessionContext {
  cookie: Omit<SessionCookieInfo, "maxAge" | "expires" | "originalMaxAge"> & {
    lifetimeMs: number | null | undefined;
  };
  warnCookieWrite(): void;
}

/** Per-request state behind `req.session`, kept off the object so it never mixes with data. */
export interface SessionState {
  /** The core session; replaced once when a route asks for serialised mode after an earlier load. */
  core: Session;
  /** The `sessions` the core came from (a second instance's `serialize()` must not take it over). */
  readonly owner: object;
  /** The request reached us over HTTPS. */
  readonly https: boolean;
  /** This request runs in serialised mode. */
  serial: boolean;
  /** A method ran on the session (save, regenerate…): it can no longer be reopened in serialised mode. */
  used: boolean;
  readonly ctx: SessionContext;
  readonly req: { session?: unknown; sessionID?: string | undefined; headers: { cookie?: string } };
  /** The object currently exposed as `req.session`. */
  object: ExpressSession;
  /** JSON of every data key as the core last saw it (loaded, or flushed to it). */
  snapshot: Map<string, string>;
  destroyed: boolean;
  id: string | undefined;
  /** `req.session.cookie`, built on first access (most requests never look). */
  cookieInfo?: SessionCookieInfo;
  /** The session's own cookie lifetime as the core holds it (undefined: the app's). */
  cookieMaxAge?: number | null | undefined;
  /** The handler assigned the lifetime in this request (a serialised reopen must carry it over). */
  cookieMaxAgeSet?: boolean;
}

const STATE = Symbol("kvsession.state");
const RESERVED = new Set(["id", "cookie", "req"]);
/**
 * Keys a decoded record can hold as own keys but that must never become properties here:
 * assigning `__proto__` would swap the object's prototype (and with it the methods).
 */
const UNSAFE = new Set(["__proto__", "constructor", "prototype"]);

function stateOf(obj: unknown): SessionState {
  const s = (obj as { [STATE]?: SessionState } | undefined)?.[STATE];
  if (s === undefined) throw new TypeError("not a kvsession req.session object");
  return s;
}

/** Runs `work`, reporting to the callback if one is given and to the returned promise always. */
function settle(work: () => Promise<void>, cb: Callback | undefined): Promise<void> {
  const p = work();
  if (typeof cb === "function") {
    p.then(
      () => cb(),
      (err) => cb(err),
    );
    // With a callback the caller handles errors there; do not also raise an unhandled rejection.
    return p.catch(() => {});
  }
  return p;
}

const json = (v: unknown): string | undefined => {
  try {
    return JSON.stringify(v);
  } catch {
    return undefined;
  }
};

/**
 * Turns the plain-property changes made since the last snapshot into core
 * `set`/`delete` calls (top-level keys, compared as JSON), so the core's
 * patch-based commit applies only what this request changed.
 */
export function flush(state: SessionState): void {
  if (state.destroyed) return;
  const obj = state.object;
  const next = new Map<string, string>();
  for (const key of Object.keys(obj)) {
    if (RESERVED.has(key)) continue;
    const value = obj[key];
    if (value === undefined || typeof value === "function") continue;
    const text = json(value);
    if (text === undefined) {
      // JSON cannot hold it: let the core raise its SessionDataError at commit.
      state.core.set(key, value as JsonValue);
      continue;
    }
    next.set(key, text);
    if (state.snapshot.get(key) !== text) {
      // Store what JSON makes of it (a Date becomes a string), as connect-redis does.
      state.core.set(key, JSON.parse(text) as JsonValue);
    }
  }
  for (const key of state.snapshot.keys()) if (!next.has(key)) state.core.delete(key);
  state.snapshot = next;
}

/** Gives the session its own cookie lifetime; what the core refuses is reported under the name the app assigned. */
export function setCookieMaxAge(state: SessionState, what: CookieLifetimeKey, ms: number | null): void {
  // As express-session: restating the lifetime the cookie already has re-sends nothing.
  const current = state.cookieMaxAge !== undefined ? state.cookieMaxAge : state.ctx.cookie.lifetimeMs;
  if (ms === current && !state.cookieMaxAgeSet) return;
  state.core.setCookieMaxAge(ms, `req.session.cookie.${what}`);
  state.cookieMaxAge = ms;
  state.cookieMaxAgeSet = true;
}

function cookieInfo(state: SessionState): SessionCookieInfo {
  const ctx = state.ctx;
  const life = () => (state.cookieMaxAge !== undefined ? state.cookieMaxAge : ctx.cookie.lifetimeMs);
  const info = {
    httpOnly: true as const,
    path: ctx.cookie.path,
    domain: ctx.cookie.domain,
    secure: ctx.cookie.secure,
    sameSite: ctx.cookie.sameSite,
  };
  return Object.defineProperties(
    info,
    cookieLifetimeProperties(life, (ms, key) => setCookieMaxAge(state, key, ms), "req.session.cookie"),
  ) as SessionCookieInfo;
}

/** express-session's error for a reload of a session the store no longer holds. */
const NOT_LOADED = "failed to load session";

/** The data keys the app changed on the object since the core last saw it (undefined: deleted). */
export function unsavedChanges(state: SessionState): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const obj = state.object;
  for (const key of Object.keys(obj)) {
    if (RESERVED.has(key)) continue;
    const value = obj[key];
    if (value === undefined || typeof value === "function") continue;
    if (state.snapshot.get(key) !== json(value)) out.set(key, value);
  }
  for (const key of state.snapshot.keys())
    if (!out.has(key) && obj[key] === undefined) out.set(key, undefined);
  return out;
}

/** Replaces the data on the current object with `data` (a fresh snapshot); the object stays the same. */
export function replaceData(state: SessionState, data: Partial<SessionData>): void {
  const obj = state.object;
  for (const key of Object.keys(obj)) if (!RESERVED.has(key)) delete obj[key];
  adopt(state, data);
}

const methods: Record<string, (this: ExpressSession, ...args: never[]) => unknown> = {
  regenerate(this: ExpressSession, cb?: Callback) {
    const state = stateOf(this);
    state.used = true;
    return settle(async () => {
      await state.core.regenerate({ keepData: false });
      state.id = await state.core.handle();
      state.snapshot = new Map();
      state.object = makeSessionObject(state, {});
      state.req.session = state.object;
      state.req.sessionID = state.id;
    }, cb);
  },
  destroy(this: ExpressSession, cb?: Callback) {
    const state = stateOf(this);
    state.used = true;
    return settle(async () => {
      await state.core.destroy();
      state.destroyed = true;
      state.id = undefined;
      delete state.req.session;
      state.req.sessionID = undefined;
    }, cb);
  },
  reload(this: ExpressSession, cb?: Callback) {
    const state = stateOf(this);
    state.used = true;
    return settle(async () => {
      await state.core.reload();
      const data = await state.core.all();
      // The object shows what the store holds: nothing, when the session is gone (see below).
      replaceData(state, data);
      state.cookieMaxAge = await state.core.cookieMaxAge();
      state.cookieMaxAgeSet = false;
      // As express-session: a session the store no longer holds (destroyed or expired meanwhile, or
      // never stored) is an error, not a silent empty session.
      if (!(await state.core.exists())) throw new Error(NOT_LOADED);
    }, cb);
  },
  save(this: ExpressSession, cb?: Callback) {
    const state = stateOf(this);
    state.used = true;
    return settle(async () => {
      flush(state);
      await state.core.save();
      // A new session has its ID from this write on, as express-session's req.sessionID would.
      state.id = await state.core.handle();
      if (state.req.session === this) state.req.sessionID = state.id;
    }, cb);
  },
  touch(this: ExpressSession, cb?: Callback) {
    const state = stateOf(this);
    state.used = true;
    return settle(async () => state.core.touch(), cb);
  },
  resetMaxAge(this: ExpressSession) {
    stateOf(this).core.touch();
    return this;
  },
};

const proto: object = Object.create(Object.prototype, {
  ...Object.fromEntries(
    Object.entries(methods).map(([name, fn]) => [
      name,
      { value: fn, enumerable: false, writable: true, configurable: true },
    ]),
  ),
  id: {
    enumerable: false,
    get(this: ExpressSession) {
      return stateOf(this).id;
    },
  },
  cookie: {
    enumerable: false,
    get(this: ExpressSession) {
      const state = stateOf(this);
      state.cookieInfo ??= cookieInfo(state);
      return state.cookieInfo;
    },
    set(this: ExpressSession) {
      stateOf(this).ctx.warnCookieWrite();
    },
  },
});

/** Puts loaded data on the current object as plain properties (unsafe keys left out) and remembers it as the snapshot. */
export function adopt(state: SessionState, data: Partial<SessionData>): void {
  const obj = state.object;
  const snap = new Map<string, string>();
  for (const [key, value] of Object.entries(data)) {
    if (RESERVED.has(key) || UNSAFE.has(key) || value === undefined) continue;
    obj[key] = value;
    snap.set(key, JSON.stringify(value));
  }
  state.snapshot = snap;
}

/** A fresh `req.session` object bound to `state`, holding `data` as plain properties. */
export function makeSessionObject(state: SessionState, data: Partial<SessionData>): ExpressSession {
  const obj = Object.create(proto) as ExpressSession;
  Object.defineProperty(obj, STATE, { value: state, enumerable: false });
  state.object = obj;
  adopt(state, data);
  return obj;
}

/** The state behind a `req.session` object (for the middleware and the helpers). */
export function sessionState(obj: unknown): SessionState | undefined {
  return (obj as { [STATE]?: SessionState } | undefined)?.[STATE];
}
