import type { JsonValue } from "@kvsession/kv";
import type { Session, SessionData } from "@kvsession/session";
import { withStatus } from "./errors.js";
import type { Slot } from "./slot.js";
import type { Key, SessionShape } from "./types.js";

/**
 * `request.session` with `lazy: true`: promise-based, and the store is read on first use only, so
 * a route that never touches the session costs no store I/O. `set`/`delete` only record a change,
 * written (as a patch on top of the stored record) when the response is sent.
 */
export interface LazySession {
  /**
   * The session's public handle: a hash of the secret ID, which is what the store is keyed by and
   * what `listUserSessions`/`revokeSession` use. Known once a call has loaded the session
   * (`await request.session.exists()`), undefined before, and for a new session until it is saved.
   */
  readonly sessionId: string | undefined;
  get<K extends Key>(key: K): Promise<SessionShape[K] | undefined>;
  has(key: Key): Promise<boolean>;
  /** All data, with this request's pending changes applied. */
  all(): Promise<Partial<SessionShape>>;
  /** Records a change (no I/O); `undefined` deletes. */
  set<K extends Key>(key: K, value: SessionShape[K] | undefined): void;
  delete(key: Key): void;
  /** A change computed from the value stored at write time (see the core's `Session.update`). */
  update<K extends Key>(
    key: K,
    fn: (current: SessionShape[K] | undefined) => SessionShape[K] | undefined,
  ): void;
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

/**
 * The lazy `request.session`. A class rather than an object of closures on purpose: one
 * allocation per request that touches the session, methods shared on the prototype.
 */
export class LazyRequestSession implements LazySession {
  constructor(private readonly slot: Slot) {}

  get core(): Session<SessionData> {
    return this.slot.core;
  }
  get sessionId(): string | undefined {
    return this.slot.id;
  }

  /**
   * Runs a core call, remembering a failure and giving session errors their HTTP status.
   * `refresh`: the call has loaded the session, so reading its handle costs no I/O.
   */
  private async guarded<T>(fn: () => Promise<T>, refresh = true): Promise<T> {
    try {
      const out = await fn();
      if (refresh) this.slot.id = await this.slot.core.handle();
      return out;
    } catch (err) {
      throw this.slot.failed(err);
    }
  }

  /** A synchronous call does no I/O: its failure is the route's mistake, and the commit still runs. */
  private sync<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
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
    this.sync(() => this.core.set(key, value as JsonValue | undefined));
  }
  delete(key: Key): void {
    this.sync(() => this.core.delete(key));
  }
  update<K extends Key>(
    key: K,
    fn: (current: SessionShape[K] | undefined) => SessionShape[K] | undefined,
  ): void {
    this.sync(() => this.core.update(key, fn as (v: JsonValue | undefined) => JsonValue | undefined));
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
    this.sync(() => this.core.touch());
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
    this.sync(() => this.core.flash(type, message));
  }
  flashes(type: string): Promise<JsonValue[]> {
    return this.guarded(() => this.core.flashes(type), false);
  }
}
