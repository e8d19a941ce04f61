import { type JsonValue, json, type KvStore } from "@kvsession/kv";
import { cookieValues, parseCookieHeader, serializeCookie } from "./cookie.js";
import { deriveKeys, hashId, newSessionId, secretBytes } from "./crypto.js";
import {
  SessionConfigError,
  SessionCookieTooLargeError,
  SessionDataError,
  SessionError,
  SessionStateError,
  SessionStoreError,
} from "./errors.js";
import { type CookiePlan, cookiePlanner, resolveTimeouts } from "./options.js";
import {
  applyData,
  applyFlash,
  assertDataKey,
  type Changes,
  DELETED,
  newChanges,
  noChanges,
  withFlash,
} from "./record.js";
import { compress, seal, sealedLength, unseal } from "./seal.js";
import type { CommitResult, CommonOptions, OpenInput, Session, SessionData } from "./types.js";
import { createUserIndex } from "./user-index.js";

/** Browsers keep at least 4096 bytes per cookie, counting name, value and attributes. */
export const MAX_COOKIE_BYTES = 4096;
const CHUNK_HEAD = /^([1-9][0-9]?)~/;

export interface SealedSessionsOptions extends CommonOptions {
  /** Split a large session over `name.0`, `name.1`… (all verified together). Default true; false = a `SessionCookieTooLargeError` instead. */
  chunking?: boolean;
  /** Most chunks one session may use. Default 4. */
  maxChunks?: number;
  /**
   * Deflate the payload when its JSON is longer than this many bytes. Default: never. Compressing
   * data an attacker can influence together with a secret lets the cookie's length confirm guesses
   * of the secret (as in CRIME/BREACH); turn it on only for sessions that hold no such mix.
   */
  compressAboveBytes?: number;
  /** Where per-user "not before" times live, enabling `revokeUser`. Any `@kvsession/kv` store. */
  revocationStore?: KvStore;
}

export interface SealedSessions<D extends object = SessionData> {
  open(input?: OpenInput): Session<D>;
  /**
   * Every sealed cookie of the user issued before now stops working (needs `revocationStore`).
   * Pass the current session as `except` to keep it: it is re-sealed at its next commit.
   */
  revokeUser(userId: string, options?: { except?: Session<D> }): Promise<void>;
}

/** What the sealed cookie carries. Times are epoch ms. */
interface Payload {
  v: 1;
  sid: string;
  /** Created (absolute timeout starts here). */
  crt: number;
  /** Issued: when this seal was made (revocation compares against it). */
  iat: number;
  /** Last seen (idle timeout). */
  lst: number;
  /** Expiry at seal time: min(lst + idle, crt + absolute). */
  exp: number;
  uid?: string;
  meta?: JsonValue;
  data: SessionData;
  flash?: Record<string, JsonValue[]>;
}

const codec = json<unknown>();
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function asPayload(v: unknown): Payload | undefined {
  if (!isObj(v) || v.v !== 1 || typeof v.sid !== "string" || !isObj(v.data)) return undefined;
  for (const k of ["crt", "iat", "lst", "exp"]) if (typeof v[k] !== "number") return undefined;
  if (v.uid !== undefined && typeof v.uid !== "string") return undefined;
  if (v.flash !== undefined && !isObj(v.flash)) return undefined;
  return v as unknown as Payload;
}

const internals = new WeakMap<object, { reissueAt(at: number): void }>();

/**
 * Sessions sealed in the cookie itself (AES-256-GCM), for apps without a store.
 * Same `Session` surface as `createSessions`. Read the revocation notes in the
 * README: a copied sealed cookie stays valid until it expires unless the user's
 * sessions are revoked through `revocationStore`.
 *
 * @example
 * const sessions = createSealedSessions<{ theme: string }>({ secrets: [process.env.SESSION_SECRET!] });
 * const session = sessions.open({ cookieHeader: req.headers.cookie, secure: true });
 * session.set("theme", "dark");
 * const { setCookie } = await session.commit();
 */
export function createSealedSessions<D extends object = SessionData>(
  options: SealedSessionsOptions,
): SealedSessions<D> {
  const secrets = secretBytes(options?.secrets);
  const keys = deriveKeys(secrets, "sealed-cookie");
  const t = resolveTimeouts(options);
  const planCookie = cookiePlanner(options);
  const chunking = options.chunking ?? true;
  const maxChunks = options.maxChunks ?? 4;
  const threshold = options.compressAboveBytes ?? Number.POSITIVE_INFINITY;
  if (!Number.isInteger(maxChunks) || maxChunks < 1 || maxChunks > 50)
    throw new SessionConfigError("maxChunks must be an integer from 1 to 50");
  const nbfStore =
    options.revocationStore &&
    createUserIndex(options.revocationStore.withPrefix("sess-nbf:"), deriveKeys(secrets, "user-index"));

  async function notBefore(uid: string): Promise<number> {
    if (!nbfStore) return 0;
    try {
      return await nbfStore.notBefore(uid);
    } catch (err) {
      throw new SessionStoreError("revocation check", err);
    }
  }

  function open(input: OpenInput = {}): Session<D> {
    const plan: CookiePlan = planCookie(input);
    const name = plan.name;
    const pairs = (() => {
      let p: ReturnType<typeof parseCookieHeader> | undefined;
      return () => (p ??= parseCookieHeader(input.cookieHeader));
    })();
    /** Cookie names of ours the browser sent: the ones a new seal or a destroy must overwrite. */
    const sentNames = (): Set<string> => {
      const s = new Set<string>();
      for (const p of pairs()) if (p.name === name || p.name.startsWith(`${name}.`)) s.add(p.name);
      return s;
    };

    let loaded = false;
    let loading: Promise<void> | undefined;
    let payload: Payload | undefined;
    /** What the request's cookie carried: "created" vs "saved". */
    let loadedPayload: Payload | undefined;
    let keyIndex = 0;
    let changes: Changes = newChanges();
    let touchWanted = false;
    let reissue = false;
    let minIat = 0;
    let state: "open" | "destroyed" | "committed" = "open";

    function opened(text: string, chunks: number, now: number): Payload | undefined {
      const r = unseal(keys, text, name, chunks);
      if (!r) return undefined;
      let p: Payload | undefined;
      try {
        p = asPayload(codec.decode(r.plain));
      } catch {
        return undefined;
      }
      if (!p) return undefined;
      const deadline = Math.min(p.exp, p.lst + t.idleMs, p.crt + t.absoluteMs);
      if (now >= deadline) return undefined;
      if (r.keyIndex > 0) keyIndex = r.keyIndex;
      return p;
    }

    async function loadNow(): Promise<void> {
      const now = Date.now();
      const found: Payload[] = [];
      for (const v of cookieValues(pairs(), name).slice(0, 4)) {
        const p = opened(v, 1, now);
        if (p) found.push(p);
      }
      const heads = cookieValues(pairs(), `${name}.0`);
      const m = heads.length === 1 ? CHUNK_HEAD.exec(heads[0]!) : null;
      if (m) {
        const n = Number(m[1]);
        const parts = [heads[0]!.slice(m[0].length)];
        for (let i = 1; i < n; i++) {
          const vs = cookieValues(pairs(), `${name}.${i}`);
          // A chunk sent twice is ambiguous: refuse the whole set rather than guess.
          if (vs.length !== 1) {
            parts.length = 0;
            break;
          }
          parts.push(vs[0]!);
        }
        if (n >= 2 && parts.length === n) {
          const p = opened(parts.join(""), n, now);
          if (p) found.push(p);
        }
      }
      const sids = new Set(found.map((p) => p.sid));
      let p = sids.size === 1 ? found[0] : undefined;
      if (p?.uid !== undefined && p.iat < (await notBefore(p.uid))) p = undefined;
      payload = loadedPayload = p;
      loaded = true;
    }

    function load(): Promise<void> {
      if (loaded) return Promise.resolve();
      loading ??= loadNow().finally(() => {
        loading = undefined;
      });
      return loading;
    }

    function assertOpen(what: string): void {
      if (state === "committed")
        throw new SessionStateError(`${what} after commit(); the response headers are already out`);
      if (state === "destroyed")
        throw new SessionStateError(`${what} after destroy(); open a new session instead`);
    }

    /** `iat` is when the user logged in (or the session began): re-sealing keeps it, so a revocation reaches every later copy. */
    function fresh(now: number): Payload {
      return { v: 1, sid: newSessionId(), crt: now, iat: now, lst: now, exp: now, data: {} };
    }

    /** Cookies for a payload: one, or numbered chunks; a too-large session is an error before any header exists. */
    function cookiesFor(p: Payload): Map<string, string> {
      let plain: Uint8Array;
      try {
        plain = codec.encode(p);
      } catch (err) {
        throw new SessionDataError(`cannot seal the session: ${(err as Error).message}`, { cause: err });
      }
      const { body, flags } = compress(Buffer.from(plain), threshold);
      const maxAge = plan.persistent ? Math.ceil((p.crt + t.absoluteMs - Date.now()) / 1000) : undefined;
      const attrs = { ...plan.attrs, maxAge };
      const room = (cookieName: string) => MAX_COOKIE_BYTES - serializeCookie(cookieName, "", attrs).length;
      const len = sealedLength(body.length);
      const out = new Map<string, string>();
      if (len <= room(name)) {
        out.set(name, serializeCookie(name, seal(keys[0]!, body, flags, name, 1), attrs));
        return out;
      }
      if (!chunking)
        throw new SessionCookieTooLargeError(
          len + MAX_COOKIE_BYTES - room(name),
          MAX_COOKIE_BYTES,
          "enable chunking, store less in the session, or use server-side sessions",
        );
      for (let n = 2; n <= maxChunks; n++) {
        const rooms = Array.from(
          { length: n },
          (_, i) => room(`${name}.${i}`) - (i === 0 ? `${n}~`.length : 0),
        );
        if (rooms.reduce((a, b) => a + b, 0) < len) continue;
        const text = seal(keys[0]!, body, flags, name, n);
        let at = 0;
        for (let i = 0; i < n; i++) {
          const piece = text.slice(at, at + rooms[i]!);
          at += piece.length;
          out.set(`${name}.${i}`, serializeCookie(`${name}.${i}`, (i === 0 ? `${n}~` : "") + piece, attrs));
        }
        return out;
      }
      throw new SessionCookieTooLargeError(
        len,
        maxChunks * MAX_COOKIE_BYTES,
        `it does not fit in ${maxChunks} chunk cookies; store less in the session or use server-side sessions`,
      );
    }

    function clearing(names: Iterable<string>): string[] {
      return [...names].map((n) => serializeCookie(n, "", { ...plan.attrs, maxAge: 0 }));
    }

    function rotate(keepData: boolean, user?: { uid: string; meta: JsonValue | undefined }): void {
      const now = Date.now();
      const next = fresh(now);
      // A regeneration that keeps the user is no new login: it stays under the user's revocations.
      if (keepData && payload?.uid !== undefined && !user) next.iat = payload.iat;
      if (keepData && payload) {
        next.data = applyData(payload.data, changes.patch);
        const flash = applyFlash(payload.flash, changes);
        if (flash) next.flash = flash;
        if (payload.uid !== undefined) next.uid = payload.uid;
        if (payload.meta !== undefined) next.meta = payload.meta;
      } else if (keepData) {
        next.data = applyData({}, changes.patch);
        const flash = applyFlash(undefined, changes);
        if (flash) next.flash = flash;
      }
      if (user) {
        next.uid = user.uid;
        if (user.meta !== undefined) next.meta = user.meta;
        else delete next.meta;
      }
      payload = next;
      changes = newChanges();
      reissue = true;
    }

    const session: Session<D> = {
      async get(key) {
        assertDataKey(key);
        const c = changes.patch.get(key);
        if (c !== undefined) return (c === DELETED ? undefined : c) as D[typeof key] | undefined;
        await load();
        return payload?.data[key] as D[typeof key] | undefined;
      },
      async has(key) {
        return (await session.get(key)) !== undefined;
      },
      async all() {
        await load();
        return applyData(payload?.data ?? {}, changes.patch) as Partial<D>;
      },
      set(key, value) {
        assertOpen("set()");
        assertDataKey(key);
        changes.patch.set(key, value === undefined ? DELETED : (value as JsonValue));
      },
      delete(key) {
        assertOpen("delete()");
        assertDataKey(key);
        changes.patch.set(key, DELETED);
      },
      flash(type, message) {
        assertOpen("flash()");
        assertDataKey(type);
        withFlash(changes);
        const list = changes.flashAdd.get(type) ?? [];
        list.push(message);
        changes.flashAdd.set(type, list);
      },
      async flashes(type) {
        assertOpen("flashes()");
        assertDataKey(type);
        await load();
        withFlash(changes);
        const taken = changes.flashTaken.get(type) ?? 0;
        const stored = (payload?.flash?.[type] ?? []).slice(taken);
        const own = changes.flashAdd.get(type) ?? [];
        changes.flashAdd.delete(type);
        if (stored.length > 0) changes.flashTaken.set(type, taken + stored.length);
        return [...stored, ...own];
      },
      async regenerate(opts) {
        assertOpen("regenerate()");
        await load();
        rotate(opts?.keepData ?? true);
      },
      async bindUser(userId, meta) {
        assertOpen("bindUser()");
        if (typeof userId !== "string" || userId === "" || userId.length > 1024)
          throw new SessionDataError("userId must be a non-empty string of at most 1024 characters");
        await load();
        rotate(true, { uid: userId, meta });
      },
      async userId() {
        await load();
        return payload?.uid;
      },
      async exists() {
        await load();
        return payload !== undefined;
      },
      async handle() {
        await load();
        return payload === undefined ? undefined : hashId(payload.sid);
      },
      async destroy() {
        assertOpen("destroy()");
        state = "destroyed";
        payload = undefined;
        changes = newChanges();
      },
      async reload() {
        assertOpen("reload()");
        changes = newChanges();
        if (!reissue) {
          loaded = false;
          await load();
        }
      },
      touch() {
        assertOpen("touch()");
        touchWanted = true;
      },
      async save() {
        assertOpen("save()");
        // Nothing to write ahead of the response: the cookie is the storage.
        await load();
      },
      async commit(): Promise<CommitResult> {
        if (state === "committed") throw new SessionStateError("commit() called twice");
        const result: CommitResult = { setCookie: [], headers: {}, outcome: "untouched" };
        if (state === "destroyed") {
          state = "committed";
          result.setCookie = clearing(sentNames());
          result.headers["cache-control"] = "no-store";
          result.outcome = "destroyed";
          return result;
        }
        if (!loaded && noChanges(changes) && !touchWanted && !reissue && minIat === 0) {
          state = "committed";
          return result;
        }
        await load();
        const now = Date.now();
        const dirty = !noChanges(changes);
        let next: Payload | undefined;
        const hadPayload = loadedPayload !== undefined;
        if (payload) {
          const due = now - payload.lst >= t.touchMs || keyIndex > 0 || touchWanted || minIat > payload.iat;
          if (dirty || reissue || due) {
            next = {
              ...payload,
              data: applyData(payload.data, changes.patch),
              lst: now,
              iat: Math.max(payload.iat, minIat),
            };
            const flash = applyFlash(payload.flash, changes);
            if (flash) next.flash = flash;
            else delete next.flash;
          }
        } else if (dirty) {
          next = fresh(now);
          next.data = applyData({}, changes.patch);
          const flash = applyFlash(undefined, changes);
          if (flash) next.flash = flash;
          reissue = true;
        }
        const sent = sentNames();
        if (next) {
          next.exp = Math.min(next.lst + t.idleMs, next.crt + t.absoluteMs);
          const cookies = cookiesFor(next);
          for (const n of cookies.keys()) sent.delete(n);
          result.setCookie = [...cookies.values(), ...clearing(sent)];
          result.outcome = hadPayload ? "saved" : "created";
          payload = next;
        } else {
          result.outcome = "unchanged";
          if (!payload) result.setCookie = clearing(sent);
        }
        state = "committed";
        if (result.setCookie.length > 0) result.headers["cache-control"] = "no-store";
        return result;
      },
    };
    internals.set(session, {
      reissueAt(at) {
        minIat = Math.max(minIat, at);
      },
    });
    return session;
  }

  return {
    open,
    async revokeUser(userId, opts) {
      if (!nbfStore)
        throw new SessionConfigError("revokeUser needs the revocationStore option in sealed mode");
      // The kept session must be read before the revocation, or its own cookie would be refused.
      if (opts?.except) await opts.except.exists();
      // Strictly after any earlier not-before, so a session re-issued by the last revocation falls to this one.
      const nbf = Math.max(Date.now() + 1, (await notBefore(userId)) + 1);
      try {
        await nbfStore.setNotBefore(userId, nbf, nbf + t.absoluteMs + 1000);
      } catch (err) {
        if (err instanceof SessionError) throw err;
        throw new SessionStoreError("revoke", err);
      }
      if (opts?.except) internals.get(opts.except)?.reissueAt(nbf);
    },
  };
}
