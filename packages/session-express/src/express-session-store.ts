import { createHash } from "node:crypto";
import type { KvStore } from "@kvsession/kv";
import session from "express-session";

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

/** JSON.parse that drops prototype-polluting keys instead of handing them to app code. */
function parse(bytes: Uint8Array): SessionData {
  return JSON.parse(decoder.decode(bytes), (k, v) =>
    k === "__proto__" || k === "constructor" || k === "prototype" ? undefined : v,
  );
}

function run<T>(work: () => Promise<T>, cb: Callback<T> | undefined): void {
  work().then(
    (value) => cb?.(null, value),
    (err) => cb?.(err),
  );
}

/**
 * Turns any kvsession store into an express-session `Store`, so an app keeps
 * its express-session middleware and swaps connect-redis (or another store)
 * for a kvsession driver. Sessions are serialised with JSON as connect-redis
 * does (a Date in session data reads back as a string); the TTL follows the
 * session cookie's expiry. Store errors reach express-session's callback, and
 * from there Express's `next(err)`.
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
  const write = (sid: string, sess: SessionData) =>
    view.set(key(sid), encoder.encode(JSON.stringify(sess)), { expiresAt: deadline(sess) });

  class KvExpressSessionStore extends session.Store {
    override get(sid: string, cb: Callback<SessionData | null>): void {
      run(async () => {
        const bytes = await view.get(key(sid));
        return bytes === undefined ? null : parse(bytes);
      }, cb);
    }
    override set(sid: string, sess: SessionData, cb?: Callback): void {
      run(() => write(sid, sess), cb);
    }
    override destroy(sid: string, cb?: Callback): void {
      run(async () => {
        await view.delete(key(sid));
      }, cb);
    }
    // The contract has no "extend TTL" primitive; express-session passes the unchanged session, so rewriting it is equivalent.
    override touch(sid: string, sess: SessionData, cb?: Callback): void {
      run(() => write(sid, sess), cb);
    }
    override all(cb: Callback<Record<string, SessionData>>): void {
      run(async () => {
        const out: Record<string, SessionData> = Object.create(null);
        for await (const e of view.entries()) out[e.key] = parse(e.value);
        return out;
      }, cb);
    }
    override length(cb: Callback<number>): void {
      run(async () => {
        let n = 0;
        for await (const _ of view.keys()) n++;
        return n;
      }, cb);
    }
    override clear(cb?: Callback): void {
      run(() => view.clear(), cb);
    }
  }
  return new KvExpressSessionStore();
}
