import { createHmac, timingSafeEqual } from "node:crypto";
import type { JsonValue } from "@kvsession/kv";
import { cookieValuesIn, serializeCookie } from "./cookie.js";
import { SessionConfigError, SessionStoreError } from "./errors.js";
import { assertDataKey } from "./record.js";
import { checkValue } from "./request-session.js";
import type { SessionData } from "./types.js";

/**
 * The store of express-session or @fastify/session, as their own store API has it
 * (connect-redis, connect-pg-simple, their MemoryStore…): callbacks, the session as an object.
 */
export interface LegacyStore {
  get(sid: string, callback: (err: unknown, session?: Record<string, unknown> | null) => void): void;
  destroy(sid: string, callback?: (err?: unknown) => void): void;
}

/**
 * Switching from express-session or @fastify/session without logging anyone out: a request that
 * carries a valid cookie of the old library (and no session of ours) is read once from the old
 * store and upgraded in place — a new session of ours with the old data, a new ID and cookie, the
 * old entry deleted and the old cookie cleared.
 */
export interface LegacyOptions {
  /** The old cookie's name: "connect.sid" (express-session's default), "sessionId" (@fastify/session's). */
  cookieName: string;
  /** The old library's secret(s), as it was given them (every one is tried). */
  secrets: readonly string[];
  /** What the old cookie value holds before the signed ID: "s:" for express-session (default), "" for @fastify/session. */
  signedPrefix?: string;
  store: LegacyStore;
  /**
   * The end of the switch: from this date on, an old cookie is only cleared. Set it to the old
   * library's maximum cookie lifetime after deploying, then remove the option.
   */
  until: Date;
  /** The old cookie's Path, to clear it. Default "/". */
  cookiePath?: string;
  /** Which of the old session becomes ours. Default: every field but `cookie`; no user binding. */
  map?: (old: Record<string, unknown>) => { data: SessionData; userId?: string };
}

export interface Legacy {
  /** The old session ID inside this request's old cookie, if the cookie verifies and the switch is on. */
  sidIn(cookieHeader: unknown): string | undefined;
  /** Whether the request sent the old cookie at all (then the response clears it). */
  sent(cookieHeader: unknown): boolean;
  /** The old session's data, or undefined when the old store has none. */
  read(sid: string): Promise<{ data: SessionData; userId?: string } | undefined>;
  destroy(sid: string): Promise<void>;
  /** The Set-Cookie value that clears the old cookie. */
  clearing(secure: boolean): string;
}

/** cookie-signature's scheme, which both express-session and @fastify/cookie use: HMAC-SHA-256, base64 without padding. */
function unsign(value: string, secret: string): string | undefined {
  const dot = value.lastIndexOf(".");
  if (dot <= 0) return undefined;
  const sid = value.slice(0, dot);
  const given = Buffer.from(value.slice(dot + 1));
  const expected = Buffer.from(createHmac("sha256", secret).update(sid).digest("base64").replace(/=+$/, ""));
  return given.length === expected.length && timingSafeEqual(given, expected) ? sid : undefined;
}

function defaultMap(old: Record<string, unknown>): { data: SessionData } {
  const data: SessionData = {};
  for (const [k, v] of Object.entries(old)) {
    if (k === "cookie") continue;
    try {
      assertDataKey(k);
      checkValue(`old session key "${k}"`, v);
    } catch {
      // What JSON cannot hold, or a forbidden key, stays behind.
      continue;
    }
    data[k] = v as JsonValue;
  }
  return { data };
}

export function createLegacy(o: LegacyOptions): Legacy {
  if (typeof o?.cookieName !== "string" || o.cookieName === "")
    throw new SessionConfigError("legacy.cookieName must be the old cookie's name, e.g. connect.sid");
  if (!Array.isArray(o.secrets) || o.secrets.length === 0 || o.secrets.some((s) => typeof s !== "string"))
    throw new SessionConfigError("legacy.secrets must list the old library's secret strings");
  if (typeof o.store?.get !== "function" || typeof o.store.destroy !== "function")
    throw new SessionConfigError("legacy.store must be the old library's store (with get and destroy)");
  if (!(o.until instanceof Date) || Number.isNaN(o.until.getTime()))
    throw new SessionConfigError("legacy.until must be a Date: when the switch ends");
  const prefix = o.signedPrefix ?? "s:";
  const map = o.map ?? defaultMap;
  const path = o.cookiePath ?? "/";
  const values = (header: unknown) => cookieValuesIn(header, o.cookieName);
  return {
    sent: (header) => values(header).length > 0,
    sidIn(header) {
      if (Date.now() >= o.until.getTime()) return undefined;
      for (const raw of values(header).slice(0, 4)) {
        let value: string;
        try {
          value = decodeURIComponent(raw);
        } catch {
          continue;
        }
        if (!value.startsWith(prefix) || value.length > 1024) continue;
        for (const secret of o.secrets) {
          const sid = unsign(value.slice(prefix.length), secret);
          if (sid !== undefined) return sid;
        }
      }
      return undefined;
    },
    read(sid) {
      return new Promise((resolve, reject) => {
        o.store.get(sid, (err, old) => {
          if (err) return reject(new SessionStoreError("legacy read", err));
          if (old === null || typeof old !== "object") return resolve(undefined);
          try {
            resolve(map(old));
          } catch (e) {
            reject(e);
          }
        });
      });
    },
    destroy(sid) {
      return new Promise((resolve, reject) => {
        o.store.destroy(sid, (err) =>
          err ? reject(new SessionStoreError("legacy destroy", err)) : resolve(),
        );
      });
    },
    clearing(secure) {
      return serializeCookie(o.cookieName, "", { path, maxAge: 0, httpOnly: true, secure, sameSite: "Lax" });
    },
  };
}
