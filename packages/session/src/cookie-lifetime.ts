import { SessionDataError } from "./errors.js";

/** The properties of an express-session or @fastify/session `session.cookie` that set its lifetime. */
export type CookieLifetimeKey = "maxAge" | "originalMaxAge" | "expires";

/**
 * Reads what an express-session or @fastify/session app assigns to `session.cookie.maxAge` (or
 * `originalMaxAge`) and `.expires` as a lifetime in ms for `Session.setCookieMaxAge`: ms for `maxAge`,
 * a Date for `expires`, and `null`, `undefined` or `false` for a browser-session cookie. Anything else
 * is a SessionDataError naming what the app assigned (`name`).
 *
 * @example
 * ```ts
 * import { cookieLifetime } from "@kvsession/session";
 *
 * cookieLifetime(30 * 24 * 3600_000, "maxAge", "req.session.cookie.maxAge"); // 2592000000
 * cookieLifetime(null, "expires", "req.session.cookie.expires"); // null
 * ```
 */
export function cookieLifetime(value: unknown, key: CookieLifetimeKey, name: string): number | null {
  if (value === null || value === undefined || value === false) return null;
  if (key === "expires" ? value instanceof Date : typeof value === "number")
    return key === "expires" ? Math.ceil((value as Date).getTime() - Date.now()) : (value as number);
  throw new SessionDataError(
    `${name} takes ${key === "expires" ? "a Date" : "a number of ms"} or null; got ${value instanceof Date ? "a Date" : typeof value}`,
  );
}

/**
 * The `maxAge`, `originalMaxAge` and `expires` properties of an adapter's `session.cookie` (for
 * `Object.defineProperties`): each reads the lifetime the cookie has now (`life`, in ms, or null for a
 * browser-session cookie) and hands what the app assigns, read by `cookieLifetime`, to `set`.
 *
 * @example
 * ```ts fragment
 * const cookie = Object.defineProperties({}, cookieLifetimeProperties(
 *   () => mine ?? appLifetime,
 *   (ms, key) => session.setCookieMaxAge(ms, `req.session.cookie.${key}`),
 *   "req.session.cookie",
 * ));
 * ```
 */
export function cookieLifetimeProperties(
  life: () => number | null | undefined,
  set: (ms: number | null, key: CookieLifetimeKey) => void,
  name: string,
): PropertyDescriptorMap {
  const lifetime = (key: CookieLifetimeKey): PropertyDescriptor => ({
    enumerable: true,
    get: key === "expires" ? () => expiresAt(life()) : life,
    set: (v: unknown) => set(cookieLifetime(v, key, `${name}.${key}`), key),
  });
  return {
    maxAge: lifetime("maxAge"),
    originalMaxAge: lifetime("originalMaxAge"),
    expires: lifetime("expires"),
  };
}

const expiresAt = (ms: number | null | undefined) =>
  typeof ms === "number" ? new Date(Date.now() + ms) : ms;
