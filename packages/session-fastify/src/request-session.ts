import type { JsonValue } from "@kvsession/kv";
import type { Session, SessionData } from "@kvsession/session";
import { withStatus } from "./errors.js";

/**
 * Declare your session's shape by merging into this interface:
 *
 * @example
 * declare module "@kvsession/session-fastify" {
 *   interface FastifySessionData { views: number; cart: string[] }
 * }
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in apps
export interface FastifySessionData {}

/** The data type in use: yours once declared, any JSON under string keys until then. */
export type SessionShape = keyof FastifySessionData extends never ? SessionData : FastifySessionData;
type Key = keyof SessionShape & string;

/**
 * `request.session`: the @fastify/session methods, all promise-based. Reads load
 * the record lazily on first use; `set`/`delete` only record a change, written
 * (as a patch on top of the stored record) when the response is sent.
 */
export interface FastifySession {
  /**
   * The session's public handle: a hash of the secret ID, which is what the store is keyed by and
   * what `listUserSessions`/`revokeSession` use. Known once a call has loaded the session
   * (`await request.session.exists()`), undefined before, for a new session until it is saved, and in sealed mode.
   */
  readonly sessionId: string | undefined;
  get<K extends Key>(key: K): Promise<SessionShape[K] | undefined>;
  has(key: Key): Promise<boolean>;
  /** All data, with this request's pending changes applied. */
  all(): Promise<Partial<SessionShape>>;
  /** Records a change (no I/O); `undefined` deletes. */
  set<K extends Key>(key: K, value: SessionShape[K] | undefined): void;
  delete(key: Key): void;
  /**
   * New session ID; the old one stops working at once. Like @fastify/session, the data is
   * dropped except the fields listed in `keepFields`; `regenerate(true)` keeps all of it.
   */
  regenerate(keepFields?: readonly Key[] | boolean): Promise<void>;
  /** Deletes the session in the store now; the response clears the cookie. */
  destroy(): Promise<void>;
  /** Drops this request's pending changes and reads the stored session again. */
  reload(): Promise<void>;
  /** Writes pending changes now instead of when the response is sent. */
  save(): Promise<void>;
  /** Refreshes the last-seen time (and the cookie) even if throttling would skip it. */
  touch(): void;
  /** Login: regenerates the ID, keeps the data, and binds the session to the user (listable, revocable). */
  bindUser(userId: string, meta?: JsonValue): Promise<void>;
  userId(): Promise<string | undefined>;
  /** Whether a stored (or sealed) session exists behind this request. */
  exists(): Promise<boolean>;
  flash(type: string, message: JsonValue): void;
  flashes(type: string): Promise<JsonValue[]>;
  /** The framework-agnostic session underneath (for `sessions.listUserSessions(id, { current })`). */
  readonly core: Session<SessionData>;
}

/** Per-request bookkeeping the plugin reads in onSend. */
export interface SessionSlot {
  core: Session<SessionData>;
  api: FastifySession | undefined;
  handle: string | undefined;
  /** A session call already failed in this request: the error response must not retry the store. */
  failed: boolean;
  committed: boolean;
}

/** The core's server-side sessions know their handle (not part of its public `Session` type yet). */
type Handled = { handleForIndex?: () => Promise<string | undefined> };

/**
 * Runs a core call, remembering a failure and giving session errors their HTTP status.
 * `refresh`: the call has loaded the session, so reading its handle costs no I/O.
 */
async function guarded<T>(slot: SessionSlot, fn: () => Promise<T>, refresh = true): Promise<T> {
  try {
    const out = await fn();
    const h = (slot.core as Handled).handleForIndex;
    if (refresh && typeof h === "function") slot.handle = await h.call(slot.core);
    return out;
  } catch (err) {
    slot.failed = true;
    throw withStatus(err);
  }
}

function sync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw withStatus(err);
  }
}

/** Builds `request.session` over one core session; created only when a route touches it. */
export function fastifySession(slot: SessionSlot): FastifySession {
  const core = slot.core;
  return {
    get sessionId() {
      return slot.handle;
    },
    core,
    // A pending change answers get/has without loading: do not force a load for the handle.
    get: (key) => guarded(slot, () => core.get(key), false) as Promise<never>,
    has: (key) => guarded(slot, () => core.has(key), false),
    all: () => guarded(slot, () => core.all()) as Promise<never>,
    set: (key, value) => sync(() => core.set(key, value as JsonValue | undefined)),
    delete: (key) => sync(() => core.delete(key)),
    regenerate: (keep) =>
      guarded(slot, async () => {
        if (keep === true) return core.regenerate({ keepData: true });
        const fields = Array.isArray(keep) ? keep : [];
        const kept = await Promise.all(fields.map(async (k) => [k, await core.get(k)] as const));
        await core.regenerate({ keepData: false });
        for (const [k, v] of kept) if (v !== undefined) core.set(k, v);
      }),
    destroy: () => guarded(slot, () => core.destroy()),
    reload: () => guarded(slot, () => core.reload()),
    save: () => guarded(slot, () => core.save()),
    touch: () => sync(() => core.touch()),
    bindUser: (userId, meta) => guarded(slot, () => core.bindUser(userId, meta)),
    userId: () => guarded(slot, () => core.userId()),
    exists: () => guarded(slot, () => core.exists()),
    flash: (type, message) => sync(() => core.flash(type, message)),
    flashes: (type) => guarded(slot, () => core.flashes(type), false),
  };
}
