import { SessionConfigError } from "./errors.js";

/** RFC 6265 cookie-name: an RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 6265 cookie-octet: printable ASCII minus space, DQUOTE, comma, semicolon and backslash. */
const OCTETS = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;
/** Attribute values (Path, Domain) may not hold control characters or a semicolon. */
const ATTR = /^[\x20-\x3A\x3C-\x7E]+$/;
/** Bound the work a hostile header can cause. */
const MAX_HEADER_CHARS = 64 * 1024;
const MAX_PAIRS = 256;

/** One `name=value` pair of a request's Cookie header, in the order the browser sent it. */
export interface CookiePair {
  name: string;
  value: string;
}

/**
 * Parses a Cookie request header strictly and never throws: pairs whose name is
 * not a token or whose value holds characters outside RFC 6265 cookie-octets are
 * skipped, not "repaired". Duplicates are kept, in header order, so the caller
 * decides how to treat cookie tossing. Accepts what Node gives (string, string
 * array, undefined).
 *
 * @example
 * parseCookieHeader("a=1; b=2; a=3"); // [{name:"a",value:"1"},{name:"b",value:"2"},{name:"a",value:"3"}]
 */
export function parseCookieHeader(header: unknown): CookiePair[] {
  const out: CookiePair[] = [];
  let text: string;
  if (typeof header === "string") text = header;
  else if (Array.isArray(header)) text = header.filter((h) => typeof h === "string").join("; ");
  else return out;
  if (text.length > MAX_HEADER_CHARS) text = text.slice(0, MAX_HEADER_CHARS);
  for (const part of text.split(";")) {
    if (out.length >= MAX_PAIRS) break;
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!TOKEN.test(name) || !OCTETS.test(value)) continue;
    out.push({ name, value });
  }
  return out;
}

/**
 * The values sent under one name, in header order, with the same strictness as
 * `parseCookieHeader` but without building every pair: the per-request fast path.
 */
export function cookieValuesIn(header: unknown, name: string): string[] {
  const out: string[] = [];
  let text: string;
  if (typeof header === "string") text = header;
  else if (Array.isArray(header)) text = header.filter((h) => typeof h === "string").join("; ");
  else return out;
  if (text.length > MAX_HEADER_CHARS) text = text.slice(0, MAX_HEADER_CHARS);
  let pairs = 0;
  let at = 0;
  while (at <= text.length && pairs < MAX_PAIRS) {
    let end = text.indexOf(";", at);
    if (end === -1) end = text.length;
    const eq = text.indexOf("=", at);
    if (eq !== -1 && eq < end) {
      pairs++;
      if (text.slice(at, eq).trim() === name) {
        let value = text.slice(eq + 1, end).trim();
        if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
        if (OCTETS.test(value)) out.push(value);
      }
    }
    at = end + 1;
  }
  return out;
}

/** Every value sent under `name`, in header order. */
export function cookieValues(pairs: readonly CookiePair[], name: string): string[] {
  const values: string[] = [];
  for (const p of pairs) if (p.name === name) values.push(p.value);
  return values;
}

export type SameSite = "Strict" | "Lax" | "None";

export interface CookieAttributes {
  path?: string | undefined;
  domain?: string | undefined;
  /** Seconds; 0 deletes the cookie. Undefined = a browser-session cookie. */
  maxAge?: number | undefined;
  secure?: boolean | undefined;
  httpOnly?: boolean | undefined;
  sameSite?: SameSite | undefined;
  partitioned?: boolean | undefined;
}

/**
 * Serialises one Set-Cookie header value. Refuses (with a `SessionConfigError`)
 * anything that would let a value or attribute break out of its field.
 *
 * @example
 * serializeCookie("__Host-sid", "abc.def", { path: "/", secure: true, httpOnly: true, sameSite: "Lax" });
 * // "__Host-sid=abc.def; Path=/; HttpOnly; Secure; SameSite=Lax"
 */
export function serializeCookie(name: string, value: string, attrs: CookieAttributes = {}): string {
  if (!TOKEN.test(name))
    throw new SessionConfigError(`cookie name ${JSON.stringify(name)} is not an RFC 6265 token`);
  if (!OCTETS.test(value))
    throw new SessionConfigError(`cookie value for ${name} holds characters a cookie cannot carry`);
  let s = `${name}=${value}`;
  if (attrs.path !== undefined) {
    if (!ATTR.test(attrs.path))
      throw new SessionConfigError(`cookie path ${JSON.stringify(attrs.path)} is invalid`);
    s += `; Path=${attrs.path}`;
  }
  if (attrs.domain !== undefined) {
    if (!ATTR.test(attrs.domain) || attrs.domain.includes(" "))
      throw new SessionConfigError(`cookie domain ${JSON.stringify(attrs.domain)} is invalid`);
    s += `; Domain=${attrs.domain}`;
  }
  if (attrs.maxAge !== undefined) {
    const secs = Math.max(0, Math.floor(attrs.maxAge));
    s += `; Max-Age=${secs}`;
    // Expires for the old clients that ignore Max-Age; Max-Age wins where both are known.
    s += `; Expires=${secs === 0 ? "Thu, 01 Jan 1970 00:00:00 GMT" : new Date(Date.now() + secs * 1000).toUTCString()}`;
  }
  if (attrs.httpOnly) s += "; HttpOnly";
  if (attrs.secure) s += "; Secure";
  if (attrs.sameSite) s += `; SameSite=${attrs.sameSite}`;
  if (attrs.partitioned) s += "; Partitioned";
  return s;
}
