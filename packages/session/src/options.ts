import { type CookieAttributes, type SameSite, serializeCookie } from "./cookie.js";
import { SessionConfigError } from "./errors.js";
import type { CommonOptions, OpenInput } from "./types.js";

export interface Timeouts {
  idleMs: number;
  absoluteMs: number;
  touchMs: number;
}

/** `idleTimeoutMs` when none is given. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;

export function resolveTimeouts(o: CommonOptions): Timeouts {
  const idleMs = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const absoluteMs = o.absoluteTimeoutMs ?? 12 * 60 * 60_000;
  const touchMs = o.touchIntervalMs ?? Math.min(60_000, Math.floor(idleMs / 10));
  for (const [k, v] of Object.entries({ idleTimeoutMs: idleMs, absoluteTimeoutMs: absoluteMs })) {
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new SessionConfigError(`${k} must be a positive integer of ms, got ${v}`);
  }
  if (!Number.isSafeInteger(touchMs) || touchMs < 0)
    throw new SessionConfigError(`touchIntervalMs must be an integer >= 0, got ${touchMs}`);
  if (absoluteMs < idleMs)
    throw new SessionConfigError(
      "absoluteTimeoutMs is shorter than idleTimeoutMs; the idle timeout would never apply",
    );
  if (touchMs >= idleMs)
    throw new SessionConfigError(
      "touchIntervalMs must be shorter than idleTimeoutMs, or active users would time out",
    );
  return { idleMs, absoluteMs, touchMs };
}

/** The cookie name and attributes for one request, which depend on whether it is secure. */
export interface CookiePlan {
  name: string;
  attrs: CookieAttributes;
  persistent: boolean;
}

export type CookiePlanner = (input: OpenInput) => CookiePlan;

/**
 * The session cookie's Max-Age in seconds, undefined for a browser-session cookie: the session's own
 * lifetime when it has one (null: browser-session), else the app's `persistent` setting. A cookie
 * that outlived the session would only be refused later, so it never reaches past the absolute deadline.
 */
export function cookieMaxAgeSec(
  plan: CookiePlan,
  own: number | null | undefined,
  createdAt: number,
  absoluteMs: number,
  now: number,
): number | undefined {
  if (own === null || (own === undefined && !plan.persistent)) return undefined;
  const left = createdAt + absoluteMs - now;
  return Math.ceil((own === undefined ? left : Math.min(own, left)) / 1000);
}

export function cookiePlanner(o: CommonOptions): CookiePlanner {
  const c = o.cookie ?? {};
  const base = c.name ?? "sid";
  const path = c.path ?? "/";
  const sameSite: SameSite = c.sameSite ?? "Lax";
  const mode = c.secure ?? "auto";
  const usePrefix = c.prefix ?? true;
  if (!["Strict", "Lax", "None"].includes(sameSite))
    throw new SessionConfigError(`cookie.sameSite must be Strict, Lax or None`);
  if (mode !== "auto" && typeof mode !== "boolean")
    throw new SessionConfigError(`cookie.secure must be "auto", true or false`);
  if (base.startsWith("__"))
    throw new SessionConfigError("cookie.name must not carry a __ prefix; it is added when allowed");
  // Fail at start-up, not on the first response.
  serializeCookie(base, "x", { path, domain: c.domain });
  const trustProxy = o.trustProxy ?? false;
  const plans = new Map<boolean, CookiePlan>();
  for (const secure of [false, true]) {
    const prefix =
      !usePrefix || !secure ? "" : c.domain === undefined && path === "/" ? "__Host-" : "__Secure-";
    plans.set(secure, {
      name: prefix + base,
      // SameSite=None without Secure is rejected by browsers: downgrade to Lax on plain HTTP.
      attrs: {
        path,
        domain: c.domain,
        httpOnly: true,
        secure,
        sameSite: sameSite === "None" && !secure ? "Lax" : sameSite,
        // Named here so that a cookie's own lifetime replaces a field of the spread copy rather than
        // adding one, which builds a new hidden class on every call.
        maxAge: undefined,
      },
      persistent: c.persistent ?? false,
    });
  }
  return (input) => {
    let secure: boolean;
    if (mode !== "auto") secure = mode;
    else secure = input.secure === true || (trustProxy && forwardedHttps(input.forwardedProto));
    return plans.get(secure)!;
  };
}

/**
 * Reads the LAST value: a proxy that appends writes its own view at the end, while
 * anything before it may come from the client and is not to be believed.
 */
function forwardedHttps(value: string | string[] | undefined): boolean {
  const joined = Array.isArray(value) ? value.join(",") : value;
  if (typeof joined !== "string") return false;
  return joined.split(",").pop()!.trim().toLowerCase() === "https";
}
