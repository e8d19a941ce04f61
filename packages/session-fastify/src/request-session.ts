import type { JsonValue } from "@kvsession/kv";
import type { Session, SessionData } from "@kvsession/session";
import type { FastifyReply } from "fastify";
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

/** The status and headers of a reply at the moment the route sent it. */
export interface SentHead {
  status: number;
  headers: ReturnType<FastifyReply["getHeaders"]>;
}

function sync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw withStatus(err);
  }
}

/**
 * `request.session`, and the per-request bookkeeping the plugin reads in onSend. A class
 * rather than an object of closures on purpose: one allocation per request that touches
 * the session, methods shared on the prototype (the core made the same choice for GC).
 */
export class RequestSession implements FastifySession {
  sessionId: string | undefined = undefined;
  /** A session call already failed in this request: the error response must not retry the store. */
  failed = false;
  committed = false;
  /** Set while the commit runs: the head of the reply the route sent, which the commit holds back. */
  committing: SentHead | null = null;
  /** The route sent again while the commit ran (the late send was dropped). */
  lateSend = false;
  constructor(readonly core: Session<SessionData>) {}

  /**
   * Runs a core call, remembering a failure and giving session errors their HTTP status.
   * `refresh`: the call has loaded the session, so reading its handle costs no I/O.
   */
  private async guarded<T>(fn: () => Promise<T>, refresh = true): Promise<T> {
    try {
      const out = await fn();
      if (refresh) this.sessionId = await this.core.handle();
      return out;
    } catch (err) {
      this.failed = true;
      throw withStatus(err);
    }
  }

  // A pending change answers get/has without loading: do not force a load for the handle.
  get<K extends Key>(key: K): Promise<SessionShape[K] | undefined> {
    return this.guarded(() => this.core.get(key), false) as Promise<SessionShape[K] | undefined>;
  }
  has(key: Key): Promise<boolean> {
    return this.guarded(() => this.core.has(key), false);
  }
  all(): Promise<Partial<SessionShape>> {
    return this.guarded(() => this.core.all()) as Promise<Partial<SessionShape>>;
  }
  set<K extends Key>(key: K, value: SessionShape[K] | undefined): void {
    sync(() => this.core.set(key, value as JsonValue | undefined));
  }
  delete(key: Key): void {
    sync(() => this.core.delete(key));
  }
  regenerate(keep?: readonly Key[] | boolean): Promise<void> {
    return this.guarded(async () => {
      if (keep === true) return this.core.regenerate({ keepData: true });
      const fields = Array.isArray(keep) ? keep : [];
      const kept = await Promise.all(fields.map(async (k) => [k, await this.core.get(k)] as const));
      await this.core.regenerate({ keepData: false });
      for (const [k, v] of kept) if (v !== undefined) this.core.set(k, v);
    });
  }
  destroy(): Promise<void> {
    return this.guarded(() => this.core.destroy());
  }
  reload(): Promise<void> {
    return this.guarded(() => this.core.reload());
  }
  save(): Promise<void> {
    return this.guarded(() => this.core.save());
  }
  touch(): void {
    sync(() => this.core.touch());
  }
  bindUser(userId: string, meta?: JsonValue): Promise<void> {
    return this.guarded(() => this.core.bindUser(userId, meta));
  }
  userId(): Promise<string | undefined> {
    return this.guarded(() => this.core.userId());
  }
  exists(): Promise<boolean> {
    return this.guarded(() => this.core.exists());
  }
  flash(type: string, message: JsonValue): void {
    sync(() => this.core.flash(type, message));
  }
  flashes(type: string): Promise<JsonValue[]> {
    return this.guarded(() => this.core.flashes(type), false);
  }
}
