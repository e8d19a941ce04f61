import type { JsonValue } from "@kvsession/kv";
import {
  cookieLifetime,
  cookieLifetimeProperties,
  type SessionData,
  SessionDataError,
} from "@kvsession/session";
import type { Slot } from "./slot.js";

/** Node-style callback, as @fastify/session's methods take. */
export type Callback = (err?: unknown) => void;

/** Per-request state behind the session object, kept off it so it never mixes with data. */
interface ObjectState {
  readonly slot: Slot;
  /** JSON of every data key as the core last saw it (loaded, or handed to it). */
  snapshot: Map<string, string>;
  destroyed: boolean;
  saved: boolean;
  /** `request.session.cookie`, built on first access. */
  cookie?: object;
}

const STATE = Symbol("kvsession.fastify.state");
/**
 * Keys a decoded record can hold but that must never become properties: assigning `__proto__`
 * would swap the object's prototype (and with it the methods).
 */
const UNSAFE = new Set(["__proto__", "constructor", "prototype"]);
/** The cookie attributes @fastify/session's `options()` sets per session; here all but the lifetime are app-wide. */
const COOKIE_KEYS = new Set(["maxAge", "expires", "domain", "path", "secure", "sameSite", "httpOnly"]);
let warnedOptions = false;

function stateOf(obj: object): ObjectState {
  const s = (obj as { [STATE]?: ObjectState })[STATE];
  if (s === undefined) throw new TypeError("not a @kvsession/session-fastify request.session object");
  return s;
}

/** Whether the object belongs to this plugin (and which request it serves). */
export function slotOfObject(obj: unknown): Slot | undefined {
  return typeof obj === "object" && obj !== null
    ? (obj as { [STATE]?: ObjectState })[STATE]?.slot
    : undefined;
}

const json = (v: unknown): string | undefined => {
  try {
    return JSON.stringify(v);
  } catch {
    return undefined;
  }
};

function dataKeys(obj: object): string[] {
  return Object.keys(obj).filter((k) => !UNSAFE.has(k));
}

/**
 * Turns the property changes made since the last snapshot into core `set`/`delete` calls
 * (top-level keys, compared as JSON, so a nested change counts), so the core's patch-based
 * commit applies only what this request changed.
 */
function flush(obj: Record<string, unknown>, state: ObjectState): void {
  if (state.destroyed) return;
  const core = state.slot.core;
  const next = new Map<string, string>();
  for (const key of dataKeys(obj)) {
    const value = obj[key];
    if (value === undefined || typeof value === "function") continue;
    const text = json(value);
    if (text === undefined) {
      // JSON cannot hold it: the core raises its SessionDataError at commit.
      core.set(key, value as JsonValue);
      continue;
    }
    next.set(key, text);
    // What JSON makes of it (a Date becomes a string) is what a later request reads back.
    if (state.snapshot.get(key) !== text) core.set(key, JSON.parse(text) as JsonValue);
  }
  for (const key of state.snapshot.keys()) if (!next.has(key)) core.delete(key);
  state.snapshot = next;
}

function modified(obj: Record<string, unknown>, state: ObjectState): boolean {
  let seen = 0;
  for (const key of dataKeys(obj)) {
    const value = obj[key];
    if (value === undefined || typeof value === "function") continue;
    seen++;
    if (state.snapshot.get(key) !== json(value)) return true;
  }
  return seen !== state.snapshot.size;
}

/** Puts data on the object as plain properties (unsafe keys left out) and remembers it as the snapshot. */
function adopt(obj: Record<string, unknown>, state: ObjectState, data: Partial<SessionData>): void {
  for (const key of Object.keys(obj)) delete obj[key];
  const snap = new Map<string, string>();
  for (const [key, value] of Object.entries(data)) {
    if (UNSAFE.has(key) || RESERVED.has(key) || value === undefined) continue;
    obj[key] = value;
    snap.set(key, JSON.stringify(value));
  }
  state.snapshot = snap;
}

/** Runs `work`; with a callback reports to it (and returns nothing), without one returns the promise. */
function settle(
  state: ObjectState,
  work: () => Promise<void>,
  cb: Callback | undefined,
): Promise<void> | undefined {
  const p = work().catch((err: unknown) => {
    throw state.slot.failed(err);
  });
  if (typeof cb !== "function") return p;
  p.then(
    () => cb(),
    (err: unknown) => cb(err),
  );
  return undefined;
}

type Self = Record<string, unknown>;

const methods = {
  get(this: Self, key: string): unknown {
    return RESERVED.has(key) ? undefined : this[key];
  },
  set(this: Self, key: string, value: unknown): void {
    const state = stateOf(this);
    if (state.destroyed)
      throw new SessionDataError("request.session.set() after destroy(); the session is gone");
    if (typeof key !== "string" || UNSAFE.has(key))
      throw new SessionDataError(`cannot store session key ${JSON.stringify(String(key))}`);
    if (RESERVED.has(key)) throw reservedError(key);
    if (value === undefined) delete this[key];
    else this[key] = value;
  },
  regenerate(
    this: Self,
    keep?: readonly string[] | boolean | Callback,
    cb?: Callback,
  ): Promise<void> | undefined {
    if (typeof keep === "function") return methods.regenerate.call(this, undefined, keep);
    const state = stateOf(this);
    return settle(
      state,
      async () => {
        const core = state.slot.core;
        if (keep === true) {
          // Everything stays, the user binding included: one write of the new record.
          flush(this, state);
          await core.regenerate({ keepData: true });
        } else {
          // As @fastify/session: a new, empty session holding only the listed fields.
          const kept: SessionData = {};
          for (const k of Array.isArray(keep) ? keep : []) {
            const v = this[k];
            if (v !== undefined && typeof v !== "function" && !UNSAFE.has(k) && !RESERVED.has(k))
              kept[k] = v as JsonValue;
          }
          await core.regenerate({ keepData: false });
          adopt(this, state, {});
          Object.assign(this, kept);
        }
        state.slot.id = await core.handle();
        state.slot.mayHold = false;
      },
      cb,
    );
  },
  destroy(this: Self, cb?: Callback) {
    const state = stateOf(this);
    return settle(
      state,
      async () => {
        await state.slot.core.destroy();
        adopt(this, state, {});
        state.destroyed = true;
        state.slot.id = undefined;
        state.slot.mayHold = false;
      },
      cb,
    );
  },
  reload(this: Self, cb?: Callback) {
    const state = stateOf(this);
    return settle(
      state,
      async () => {
        const core = state.slot.core;
        await core.reload();
        adopt(this, state, await core.all());
        state.slot.id = await core.handle();
        state.slot.cookieMaxAge = await core.cookieMaxAge();
        state.slot.cookieMaxAgeSet = false;
      },
      cb,
    );
  },
  save(this: Self, cb?: Callback) {
    const state = stateOf(this);
    return settle(
      state,
      async () => {
        flush(this, state);
        await state.slot.core.save();
        state.saved = true;
        state.slot.id = await state.slot.core.handle();
      },
      cb,
    );
  },
  touch(this: Self): void {
    stateOf(this).slot.core.touch();
  },
  isModified(this: Self): boolean {
    const state = stateOf(this);
    return !state.destroyed && modified(this, state);
  },
  isSaved(this: Self): boolean {
    return stateOf(this).saved;
  },
  /**
   * @fastify/session sets cookie attributes per session here. They are app-wide in this plugin (so
   * no route can weaken them): a cookie attribute gets a one-time warning; other keys (such as the
   * `userInfo` @fastify/csrf-protection passes along) are not cookie attributes and change nothing.
   */
  options(this: Self, opts: Record<string, unknown> | undefined): void {
    if (opts === undefined || opts === null) return;
    const slot = stateOf(this).slot;
    for (const key of ["maxAge", "expires"] as const) {
      if (opts[key] === undefined) continue;
      const name = `request.session.options({ ${key} })`;
      setLifetime(slot, cookieLifetime(opts[key], key, name), name);
      break;
    }
    if (warnedOptions) return;
    if (!Object.keys(opts).some((k) => COOKIE_KEYS.has(k) && k !== "maxAge" && k !== "expires")) return;
    warnedOptions = true;
    process.emitWarning(
      "request.session.options() was given cookie attributes, but @kvsession/session-fastify sets them app-wide (the plugin's `cookie` option); the call has no effect",
      { code: "KVSESSION_COOKIE_OPTIONS" },
    );
  },
};

/** Names with a meaning on the session object itself: never data. */
const RESERVED: ReadonlySet<string> = new Set([...Object.keys(methods), "sessionId", "cookie"]);

/** Gives the session its own cookie lifetime; what the core refuses is reported under the name the app used (`name`). */
function setLifetime(slot: Slot, ms: number | null, name: string): void {
  // As @fastify/session: restating the lifetime the cookie already has re-sends nothing.
  const current = slot.cookieMaxAge !== undefined ? slot.cookieMaxAge : slot.appCookieMaxAge;
  if (ms === current && !slot.cookieMaxAgeSet) return;
  slot.core.setCookieMaxAge(ms, name);
  slot.cookieMaxAge = ms;
  slot.cookieMaxAgeSet = true;
}

function cookieView(slot: Slot): object {
  const life = () => (slot.cookieMaxAge !== undefined ? slot.cookieMaxAge : slot.appCookieMaxAge);
  return Object.defineProperties(
    {},
    cookieLifetimeProperties(
      life,
      (ms, key) => setLifetime(slot, ms, `request.session.cookie.${key}`),
      "request.session.cookie",
    ),
  );
}

function reservedError(key: string): SessionDataError {
  return new SessionDataError(
    `"${key}" is a method of request.session (as in @fastify/session), so it cannot hold data: store the value under another key`,
  );
}

/**
 * Methods are accessors on the prototype: reading one gives the method, and assigning a value to
 * one (`request.session.save = 1`) throws rather than silently shadowing it for the rest of the request.
 */
const proto: object = Object.create(Object.prototype, {
  ...Object.fromEntries(
    Object.entries(methods).map(([name, fn]) => [
      name,
      {
        enumerable: false,
        configurable: false,
        get: () => fn,
        set() {
          throw reservedError(name);
        },
      },
    ]),
  ),
  sessionId: {
    enumerable: false,
    configurable: false,
    get(this: object) {
      return stateOf(this).slot.id;
    },
    set() {
      throw reservedError("sessionId");
    },
  },
  cookie: {
    enumerable: false,
    configurable: false,
    get(this: object) {
      const state = stateOf(this);
      state.cookie ??= cookieView(state.slot);
      return state.cookie;
    },
    set() {
      throw reservedError("cookie");
    },
  },
});

/** A `request.session` holding `data` as plain properties, bound to the request's slot. */
export function makeSessionObject(slot: Slot, data: Partial<SessionData>): Record<string, unknown> {
  const obj = Object.create(proto) as Self;
  const state: ObjectState = { slot, snapshot: new Map(), destroyed: false, saved: false };
  Object.defineProperty(obj, STATE, { value: state, enumerable: false });
  adopt(obj, state, data);
  slot.flush = () => flush(obj, state);
  return obj;
}

/** Whether `destroy()` ended this object's session (request.session is null then, as in @fastify/session). */
export function isDestroyed(obj: object): boolean {
  return stateOf(obj).destroyed;
}
