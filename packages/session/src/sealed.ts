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
import {
  type CookiePlan,
  type CookiePlanner,
  cookieMaxAgeSec,
  cookiePlanner,
  resolveTimeouts,
  type Timeouts,
} from "./options.js";
import { applyCookieMaxAge, applyData, applyFlash, isCookieMaxAge, newChanges } from "./record.js";
import { RequestSession, type SessionView } from "./request-session.js";
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
  /** This session's own cookie lifetime in ms (null: browser-session); absent: the app's setting. */
  cma?: number | null;
}

const codec = json<unknown>();
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function asPayload(v: unknown): Payload | undefined {
  if (!isObj(v) || v.v !== 1 || typeof v.sid !== "string" || !isObj(v.data)) return undefined;
  for (const k of ["crt", "iat", "lst", "exp"]) if (typeof v[k] !== "number") return undefined;
  if (v.uid !== undefined && typeof v.uid !== "string") return undefined;
  if (v.flash !== undefined && !isObj(v.flash)) return undefined;
  if (!isCookieMaxAge(v.cma)) return undefined;
  return v as unknown as Payload;
}

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

  const engine: SealedEngine = {
    keys,
    t,
    planCookie,
    chunking,
    maxChunks,
    threshold,
    async notBefore(uid) {
      if (!nbfStore) return 0;
      try {
        return await nbfStore.notBefore(uid);
      } catch (err) {
        throw new SessionStoreError("revocation check", err);
      }
    },
  };

  return {
    open: (input: OpenInput = {}) => new SealedSession<D>(engine, input),
    async revokeUser(userId, opts) {
      if (!nbfStore)
        throw new SessionConfigError("revokeUser needs the revocationStore option in sealed mode");
      const keep = opts?.except instanceof SealedSession ? opts.except : undefined;
      // The kept session must be read before the revocation, or its own cookie would be refused.
      if (keep) await keep.exists();
      // Strictly after any earlier not-before, so a session re-issued by the last revocation falls to this one.
      const nbf = Math.max(Date.now() + 1, (await engine.notBefore(userId)) + 1);
      try {
        await nbfStore.setNotBefore(userId, nbf, nbf + t.absoluteMs + 1000);
      } catch (err) {
        if (err instanceof SessionError) throw err;
        throw new SessionStoreError("revoke", err);
      }
      keep?.reissueAt(nbf);
    },
  };
}

/** What every request of one `createSealedSessions` shares. */
interface SealedEngine {
  keys: Buffer[];
  t: Timeouts;
  planCookie: CookiePlanner;
  chunking: boolean;
  maxChunks: number;
  threshold: number;
  notBefore(uid: string): Promise<number>;
}

/** One request's sealed session: loaded from (and committed to) the cookie itself. */
class SealedSession<D extends object> extends RequestSession<D> {
  readonly #e: SealedEngine;
  readonly #input: OpenInput;
  readonly #plan: CookiePlan;
  #pairs: ReturnType<typeof parseCookieHeader> | undefined;
  #payload: Payload | undefined;
  /** What the request's cookie carried: "created" vs "saved". */
  #loadedPayload: Payload | undefined;
  #keyIndex = 0;
  #reissue = false;
  #minIat = 0;

  constructor(engine: SealedEngine, input: OpenInput) {
    super();
    this.#e = engine;
    this.#input = input;
    this.#plan = engine.planCookie(input);
  }

  #cookiePairs() {
    this.#pairs ??= parseCookieHeader(this.#input.cookieHeader);
    return this.#pairs;
  }

  /** Cookie names of ours the browser sent: the ones a new seal or a destroy must overwrite. */
  #sentNames(): Set<string> {
    const name = this.#plan.name;
    const s = new Set<string>();
    for (const p of this.#cookiePairs()) if (p.name === name || p.name.startsWith(`${name}.`)) s.add(p.name);
    return s;
  }

  protected view(): SessionView | undefined {
    const p = this.#payload;
    return p && { data: p.data, flash: p.flash, userId: p.uid, cookieMaxAge: p.cma };
  }

  protected handleNow(): string | undefined {
    return this.#payload === undefined ? undefined : hashId(this.#payload.sid);
  }

  protected absoluteMs(): number {
    return this.#e.t.absoluteMs;
  }

  /** Sealed revocation keeps this session: it is re-sealed at commit with a login time after `at`. */
  reissueAt(at: number): void {
    this.#minIat = Math.max(this.#minIat, at);
  }

  #opened(text: string, chunks: number, now: number): Payload | undefined {
    const r = unseal(this.#e.keys, text, this.#plan.name, chunks);
    if (!r) return undefined;
    let p: Payload | undefined;
    try {
      p = asPayload(codec.decode(r.plain));
    } catch {
      return undefined;
    }
    if (!p) return undefined;
    const t = this.#e.t;
    const deadline = Math.min(p.exp, p.lst + t.idleMs, p.crt + t.absoluteMs);
    if (now >= deadline) return undefined;
    if (r.keyIndex > 0) this.#keyIndex = r.keyIndex;
    return p;
  }

  protected async loadNow(): Promise<void> {
    const now = Date.now();
    const name = this.#plan.name;
    const pairs = this.#cookiePairs();
    const found: Payload[] = [];
    for (const v of cookieValues(pairs, name).slice(0, 4)) {
      const p = this.#opened(v, 1, now);
      if (p) found.push(p);
    }
    const heads = cookieValues(pairs, `${name}.0`);
    const m = heads.length === 1 ? CHUNK_HEAD.exec(heads[0]!) : null;
    if (m) {
      const n = Number(m[1]);
      const parts = [heads[0]!.slice(m[0].length)];
      for (let i = 1; i < n; i++) {
        const vs = cookieValues(pairs, `${name}.${i}`);
        // A chunk sent twice is ambiguous: refuse the whole set rather than guess.
        if (vs.length !== 1) {
          parts.length = 0;
          break;
        }
        parts.push(vs[0]!);
      }
      if (n >= 2 && parts.length === n) {
        const p = this.#opened(parts.join(""), n, now);
        if (p) found.push(p);
      }
    }
    const sids = new Set(found.map((p) => p.sid));
    let p = sids.size === 1 ? found[0] : undefined;
    if (p?.uid !== undefined && p.iat < (await this.#e.notBefore(p.uid))) p = undefined;
    this.#payload = this.#loadedPayload = p;
    this.loaded = true;
  }

  protected async reloadNow(): Promise<void> {
    if (this.#reissue) return;
    this.loaded = false;
    await this.load();
  }

  protected async persistNow(): Promise<void> {
    // Nothing to write ahead of the response: the cookie is the storage.
    await this.load();
  }

  protected async end(): Promise<void> {
    this.#payload = undefined;
  }

  /** `iat` is when the user logged in (or the session began): re-sealing keeps it, so a revocation reaches every later copy. */
  #fresh(now: number): Payload {
    return { v: 1, sid: newSessionId(), crt: now, iat: now, lst: now, exp: now, data: {} };
  }

  protected async rotate(
    keepData: boolean,
    user?: { userId: string; meta: JsonValue | undefined },
  ): Promise<void> {
    await this.load();
    const now = Date.now();
    const payload = this.#payload;
    const changes = this.changes ?? newChanges();
    const next = this.#fresh(now);
    // A regeneration that keeps the user is no new login: it stays under the user's revocations.
    if (keepData && payload?.uid !== undefined && !user) next.iat = payload.iat;
    if (keepData) {
      next.data = applyData(payload?.data ?? {}, changes.patch);
      const flash = applyFlash(payload?.flash, changes);
      if (flash) next.flash = flash;
      if (payload?.uid !== undefined) next.uid = payload.uid;
      if (payload?.meta !== undefined) next.meta = payload.meta;
    }
    if (user) {
      next.uid = user.userId;
      if (user.meta !== undefined) next.meta = user.meta;
      else delete next.meta;
    }
    // The cookie lifetime describes the browser the user chose it on: a new ID keeps it, even without the data.
    const cma = applyCookieMaxAge(payload?.cma, changes);
    if (cma !== undefined) next.cma = cma;
    this.#payload = next;
    this.changes = undefined;
    this.#reissue = true;
  }

  /** Cookies for a payload: one, or numbered chunks; a too-large session is an error before any header exists. */
  #cookiesFor(p: Payload): Map<string, string> {
    const { keys, t, chunking, maxChunks, threshold } = this.#e;
    const name = this.#plan.name;
    let plain: Uint8Array;
    try {
      plain = codec.encode(p);
    } catch (err) {
      throw new SessionDataError(`cannot seal the session: ${(err as Error).message}`, { cause: err });
    }
    const { body, flags } = compress(Buffer.from(plain), threshold);
    const maxAge = cookieMaxAgeSec(this.#plan, p.cma, p.crt, t.absoluteMs, Date.now());
    const attrs = { ...this.#plan.attrs, maxAge };
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

  #clearing(names: Iterable<string>): string[] {
    return [...names].map((n) => serializeCookie(n, "", { ...this.#plan.attrs, maxAge: 0 }));
  }

  async commit(): Promise<CommitResult> {
    if (this.state === "committed") throw new SessionStateError("commit() called twice");
    const result: CommitResult = { setCookie: [], headers: {}, outcome: "untouched" };
    if (this.state === "destroyed") {
      this.state = "committed";
      result.setCookie = this.#clearing(this.#sentNames());
      result.headers["cache-control"] = "no-store";
      result.outcome = "destroyed";
      return result;
    }
    if (!this.loaded && !this.dirty() && !this.touchWanted && !this.#reissue && this.#minIat === 0) {
      this.state = "committed";
      return result;
    }
    await this.load();
    const now = Date.now();
    const t = this.#e.t;
    const changes = this.changes ?? newChanges();
    const dirty = this.dirty();
    const payload = this.#payload;
    let next: Payload | undefined;
    if (payload) {
      const due =
        now - payload.lst >= t.touchMs ||
        this.#keyIndex > 0 ||
        this.touchWanted ||
        this.#minIat > payload.iat;
      if (dirty || this.#reissue || due) {
        next = {
          ...payload,
          data: applyData(payload.data, changes.patch),
          lst: now,
          iat: Math.max(payload.iat, this.#minIat),
        };
        const flash = applyFlash(payload.flash, changes);
        if (flash) next.flash = flash;
        else delete next.flash;
        const cma = applyCookieMaxAge(payload.cma, changes);
        if (cma !== undefined) next.cma = cma;
        else delete next.cma;
      }
    } else if (dirty) {
      next = this.#fresh(now);
      next.data = applyData({}, changes.patch);
      const flash = applyFlash(undefined, changes);
      if (flash) next.flash = flash;
      const cma = applyCookieMaxAge(undefined, changes);
      if (cma !== undefined) next.cma = cma;
      this.#reissue = true;
    }
    const sent = this.#sentNames();
    if (next) {
      next.exp = Math.min(next.lst + t.idleMs, next.crt + t.absoluteMs);
      const cookies = this.#cookiesFor(next);
      for (const n of cookies.keys()) sent.delete(n);
      result.setCookie = [...cookies.values(), ...this.#clearing(sent)];
      result.outcome = this.#loadedPayload !== undefined ? "saved" : "created";
      this.#payload = next;
    } else {
      result.outcome = "unchanged";
      if (!payload) result.setCookie = this.#clearing(sent);
    }
    this.state = "committed";
    if (result.setCookie.length > 0) result.headers["cache-control"] = "no-store";
    return result;
  }
}
