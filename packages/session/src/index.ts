export type { CookieAttributes, CookiePair, SameSite } from "./cookie.js";
export { cookieValues, parseCookieHeader, serializeCookie } from "./cookie.js";
export type { Secret } from "./crypto.js";
export { hashId, MIN_SECRET_BYTES } from "./crypto.js";
export * from "./errors.js";
export type { SealedSessions, SealedSessionsOptions } from "./sealed.js";
export { createSealedSessions, MAX_COOKIE_BYTES } from "./sealed.js";
export { createSessions } from "./sessions.js";
export type * from "./types.js";
