import { createHash } from "node:crypto";
import { KvCodecError, type KvStore, KvValueTooLargeError } from "@kvsession/kv";
import { SessionDataError, SessionStoreError } from "@kvsession/session";
import session from "express-session";
import { withStatus } from "./errors.js";

export interface ExpressSessionStoreOptions {
  /** Prefix view the sessions live in. Default "sess:". */
  prefix?: string;
  /**
   * Store sessions under SHA-256(sid) instead of the raw ID, so a leaked store dump holds no live
   * session tokens. `all()` then keys sessions by that hash. Default true.
   */
  hashIds?: boolean;
  /** TTL when the session cookie has no expiry (a browser-session cookie), in ms. Default one day. */
  defaultTtlMs?: number;
}

type Callback<T = void> = (err?: unknown, value?: T) => void;
type SessionData = session.SessionData;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * JSON.parse that drops prototype-polluting keys instead of handing them to app code. An entry that
 * does not parse counts as absent (express-session starts a new session, whose save replaces it):
 * the parser's message would quote the stored data to whoever sees the error.
 */
function parse(bytes: Uint8Array): SessionData | null {
  try {
    return JSON.parse(decoder.decode(bytes), (k, v) =>
      k === "__proto__" || k === "constructor" || k === "prototype" ? undefined : v,
    );
  } catch {
    return null;
  }
}

/**
 * What express-session hands to `next(err)`: a store failure's own text names the store (host, port,
 * file path) and Express shows `err.stack` to clients outside production, so the error says only that
 * the store is unavailable (503); the failure stays on `err.cause` for logs. What the store refuses for
 * its content (too large, not encodable) cannot succeed on a retry: a data error, not an outage.
 */
function storeFailure(operation: string, err: unknown): unknown {
  const wrapped =
    err instanceof KvValueTooLargeError || err instanceof KvCodecError
      ? new SessionDataError("cannot store the session", { cause: err })
      : new SessionStoreError(operation, err);
  return withStatus(wrapped);
}

function run<T>(operation: string, work: () => Promise<T>, cb: Callback<T> | undefined): void {
  work().then(
    (value) => cb?.(null, value),
    (err) => cb?.(storeFailure(operation, err)),
  );
}

/**
 * Turns any kvsession store into an express-session `Store`, so an app keeps
 * its express-session middleware and swaps connect-redis (or another store)
 * for a kvsession driver. Sessions are serialised with JSON as connect-redis
 * does (a Date in session data reads back as a string); the TTL follows the
 * session cookie's expiry, and an expiry already past deletes the session.
 * `touch` (what express-session calls for a request that changed nothing) only
 * extends a session that is still stored, and never writes its data: a slow
 * read-only request cannot undo changes committed meanwhile, nor bring back a
 * session a logout destroyed meanwhile. Store errors reach express-session's
 * callback, and from there Express's `next(err)`, as a `SessionStoreError`
 * (status 503, a generic message, the store's own error on `err.cause`).
 *
 * @example
 * import session from "express-session";
 * import { toExpressSessionStore } from "@kvsession/session-express/store";
 * app.use(session({ store: toExpressSessionStore(createSqliteStore({ path: "sessions.db" })), secret, resave: false, saveUninitialized: false }));
 */
export function toExpressSessionStore(
  store: KvStore,
  options: ExpressSessionStoreOptions = {},
): session.Store {
  const view = store.withPrefix(options.prefix ?? "sess:");
  const hashIds = options.hashIds ?? true;
  const defaultTtl = options.defaultTtlMs ?? 24 * 3600 * 1000;
  const key = hashIds
    ? (sid: string) => createHash("sha256").update(sid).digest("base64url")
    : (sid: string) => sid;
  const deadline = (sess: SessionData) => {
    const expires = sess.cookie?.expires;
    const at = expires ? new Date(expires).getTime() : Number.NaN;
    return Number.isFinite(at) ? at : Date.now() + defaultTtl;
  };
  const write = async (sid: string, sess: SessionData) => {
    const at = deadline(sess);
    // A cookie that has already expired ends the session: what it held must not outlive it.
    if (at <= Date.now()) await view.delete(key(sid));
    else await view.set(key(sid), encoder.encode(JSON.stringify(sess)), { expiresAt: at });
  };
  /**
   * Moves the expiry of the stored bytes, as they are in the store now: the session the request
   * loaded may be stale. With compare-and-set, a write that lands meanwhile wins (it carries its own
   * expiry) and a delete meanwhile stays a delete; without it, two store calls apart is the window.
   */
  const extend = async (sid: string, sess: SessionData) => {
    const k = key(sid);
    const at = deadline(sess);
    if (at <= Date.now()) {
      await view.delete(k);
      return;
    }
    if (view.capabilities.compareAndSet) {
      const current = await view.getVersioned(k);
      if (current.value !== undefined)
        await view.compareAndSet(k, current.version, current.value, { expiresAt: at });
      return;
    }
    const bytes = await view.get(k);
    if (bytes !== undefined) await view.set(k, bytes, { expiresAt: at });
  };

  class KvExpressSessionStore extends session.Store {
    override get(sid: string, cb: Callback<SessionData | null>): void {
      run(
        "load",
        async () => {
          const bytes = await view.get(key(sid));
          return bytes === undefined ? null : parse(bytes);
        },
        cb,
      );
    }
    override set(sid: string, sess: SessionData, cb?: Callback): void {
      run("save", () => write(sid, sess), cb);
    }
    override destroy(sid: string, cb?: Callback): void {
      run(
        "destroy",
        async () => {
          await view.delete(key(sid));
        },
        cb,
      );
    }
    override touch(sid: string, sess: SessionData, cb?: Callback): void {
      run("touch", () => extend(sid, sess), cb);
    }
    override all(cb: Callback<Record<string, SessionData>>): void {
      run(
        "list",
        async () => {
          const out: Record<string, SessionData> = Object.create(null);
          for await (const e of view.entries()) {
            const sess = parse(e.value);
            if (sess !== null) out[e.key] = sess;
          }
          return out;
        },
        cb,
      );
    }
    override length(cb: Callback<number>): void {
      run(
        "list",
        async () => {
          let n = 0;
          for await (const _ of view.keys()) n++;
          return n;
        },
        cb,
      );
    }
    override clear(cb?: Callback): void {
      run("clear", () => view.clear(), cb);
    }
  }
  return new KvExpressSessionStore();
}
