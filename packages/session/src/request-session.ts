import { type JsonValue, json } from "@kvsession/kv";
import { SessionDataError, SessionStateError } from "./errors.js";
import {
  applyData,
  assertDataKey,
  type Changes,
  DELETED,
  newChanges,
  noChanges,
  Update,
  withFlash,
} from "./record.js";
import type { CommitResult, Session, SessionData } from "./types.js";

/** What a request sees of its session, whichever mode holds it. */
export interface SessionView {
  data: SessionData;
  flash?: Record<string, JsonValue[]> | undefined;
  userId?: string | undefined;
  cookieMaxAge?: number | null | undefined;
}

export type SessionState = "open" | "destroyed" | "gone" | "committed";

const codec = json<unknown>();

/** Full codec check (prototype-pollution keys, non-JSON values) of one value the app handed us. */
export function checkValue(what: string, value: unknown): void {
  try {
    codec.encode(value);
  } catch (err) {
    throw new SessionDataError(`cannot store ${what}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * One request's session: the pending changes, flash messages and state rules, shared by the
 * server-side and sealed modes. A mode says how the session is loaded, rotated, ended, saved
 * and committed; everything a handler calls in between is here, once.
 */
export abstract class RequestSession<D extends object> implements Session<D> {
  /** This request's `set`/`delete`/flash changes, applied by the mode on top of what it loaded. */
  protected changes: Changes | undefined;
  protected state: SessionState = "open";
  protected touchWanted = false;
  protected loaded = false;
  /** `setCookieMaxAge` ran: this response re-sends the cookie even if its write happened in an earlier `save()`. */
  protected cookieChanged = false;
  #loading: Promise<void> | undefined;

  /** The session as loaded (or as this request rotated it); undefined when there is none. */
  protected abstract view(): SessionView | undefined;
  /** Reads the session the request's cookie points at, then sets `loaded`. */
  protected abstract loadNow(): Promise<void>;
  /** Reads the session again after `reload()` dropped the changes. */
  protected abstract reloadNow(): Promise<void>;
  /** A new ID; the data kept unless `keepData` is false; bound to `user` at login. */
  protected abstract rotate(
    keepData: boolean,
    user?: { userId: string; meta: JsonValue | undefined },
  ): Promise<void>;
  /** Ends the session where it is kept (the response then clears the cookie). */
  protected abstract end(): Promise<void>;
  /** Writes pending changes before the response, where the mode has anywhere to write them. */
  protected abstract persistNow(): Promise<unknown>;
  protected abstract handleNow(): string | undefined;
  /** The app's absolute timeout: no cookie may outlive it. */
  protected abstract absoluteMs(): number;
  abstract commit(): Promise<CommitResult>;

  /** Starts loading once; undefined when already loaded (no promise on the common path). */
  protected load(): Promise<void> | undefined {
    if (this.#loading !== undefined) return this.#loading;
    if (this.loaded) return undefined;
    this.#loading = this.loadNow().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  protected ch(): Changes {
    this.changes ??= newChanges();
    return this.changes;
  }

  protected dirty(): boolean {
    return this.changes !== undefined && !noChanges(this.changes);
  }

  protected assertOpen(what: string): void {
    if (this.state === "committed")
      throw new SessionStateError(`${what} after commit(); the response headers are already out`);
    if (this.state === "destroyed")
      throw new SessionStateError(`${what} after destroy(); open a new session instead`);
  }

  /** Checks what this request adds (what was loaded was checked when it was stored). */
  protected checkChanges(): void {
    const c = this.changes;
    if (!c) return;
    for (const [k, v] of c.patch) {
      // Strings, booleans, null and finite numbers need no walk; everything else gets the codec's full check.
      // An update()'s function is checked by what it returns, when it runs.
      if (v === DELETED || v === null || typeof v === "string" || typeof v === "boolean") continue;
      if (v instanceof Update) continue;
      if (typeof v === "number" && Number.isFinite(v)) continue;
      checkValue(`session key "${k}"`, v);
    }
    for (const [type, msgs] of c.flashAdd) checkValue(`flash messages "${type}"`, msgs);
  }

  async get<K extends keyof D & string>(key: K): Promise<D[K] | undefined> {
    assertDataKey(key);
    const p = this.changes?.patch.get(key);
    if (p !== undefined && !(p instanceof Update)) return (p === DELETED ? undefined : p) as D[K] | undefined;
    await this.load();
    const stored = this.view()?.data[key];
    return (p instanceof Update ? p.fn(stored) : stored) as D[K] | undefined;
  }

  async has(key: keyof D & string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  async all(): Promise<Partial<D>> {
    await this.load();
    const data = this.view()?.data ?? {};
    return (this.changes ? applyData(data, this.changes.patch) : { ...data }) as Partial<D>;
  }

  set<K extends keyof D & string>(key: K, value: D[K] | undefined): void {
    this.assertOpen("set()");
    assertDataKey(key);
    this.ch().patch.set(key, value === undefined ? DELETED : (value as JsonValue));
  }

  update<K extends keyof D & string>(key: K, fn: (current: D[K] | undefined) => D[K] | undefined): void {
    this.assertOpen("update()");
    assertDataKey(key);
    if (typeof fn !== "function")
      throw new SessionDataError("update() needs a function of the current value");
    const before = this.changes?.patch.get(key);
    const current = fn as unknown as Update["fn"];
    // An update after a set or another update of the same key builds on it.
    const op =
      before === undefined
        ? new Update(current)
        : before instanceof Update
          ? new Update((v) => current(before.fn(v)))
          : new Update(() => current(before === DELETED ? undefined : before));
    this.ch().patch.set(key, op);
  }

  delete(key: keyof D & string): void {
    this.assertOpen("delete()");
    assertDataKey(key);
    this.ch().patch.set(key, DELETED);
  }

  flash(type: string, message: JsonValue): void {
    this.assertOpen("flash()");
    assertDataKey(type);
    const c = withFlash(this.ch());
    const list = c.flashAdd.get(type) ?? [];
    list.push(message);
    c.flashAdd.set(type, list);
  }

  async flashes(type: string): Promise<JsonValue[]> {
    this.assertOpen("flashes()");
    assertDataKey(type);
    await this.load();
    const c = withFlash(this.ch());
    const taken = c.flashTaken.get(type) ?? 0;
    const stored = (this.view()?.flash?.[type] ?? []).slice(taken);
    const own = c.flashAdd.get(type) ?? [];
    c.flashAdd.delete(type);
    if (stored.length > 0) c.flashTaken.set(type, taken + stored.length);
    return [...stored, ...own];
  }

  async regenerate(options?: { keepData?: boolean }): Promise<void> {
    this.assertOpen("regenerate()");
    await this.rotate(options?.keepData ?? true);
  }

  async bindUser(userId: string, meta?: JsonValue): Promise<void> {
    this.assertOpen("bindUser()");
    if (typeof userId !== "string" || userId === "" || userId.length > 1024)
      throw new SessionDataError("userId must be a non-empty string of at most 1024 characters");
    if (meta !== undefined) checkValue("session metadata", meta);
    await this.rotate(true, { userId, meta });
  }

  async userId(): Promise<string | undefined> {
    await this.load();
    return this.view()?.userId;
  }

  async exists(): Promise<boolean> {
    await this.load();
    return this.view() !== undefined;
  }

  handle(): Promise<string | undefined> {
    const loading = this.load();
    return loading === undefined ? Promise.resolve(this.handleNow()) : loading.then(() => this.handleNow());
  }

  async destroy(): Promise<void> {
    this.assertOpen("destroy()");
    await this.end();
    this.state = "destroyed";
    this.changes = undefined;
  }

  async reload(): Promise<void> {
    this.assertOpen("reload()");
    this.changes = undefined;
    this.touchWanted = false;
    this.cookieChanged = false;
    await this.reloadNow();
  }

  setCookieMaxAge(ms: number | null | undefined, name = "setCookieMaxAge()"): void {
    this.assertOpen("setCookieMaxAge()");
    const most = this.absoluteMs();
    if (ms !== undefined && ms !== null && (!Number.isSafeInteger(ms) || ms <= 0 || ms > most))
      throw new SessionDataError(
        `${name} takes a whole number of ms from 1 to absoluteTimeoutMs (${most}), null or undefined; got ${String(ms)}. ` +
          "The session ends at absoluteTimeoutMs whatever its cookie says: raise absoluteTimeoutMs for longer remember-me sessions",
      );
    this.ch().cookieMaxAge = ms === undefined ? DELETED : ms;
    this.cookieChanged = true;
  }

  async cookieMaxAge(): Promise<number | null | undefined> {
    const pending = this.changes?.cookieMaxAge;
    if (pending !== undefined) return pending === DELETED ? undefined : pending;
    await this.load();
    return this.view()?.cookieMaxAge;
  }

  touch(): void {
    this.assertOpen("touch()");
    this.touchWanted = true;
  }

  async save(): Promise<void> {
    this.assertOpen("save()");
    await this.persistNow();
  }
}
