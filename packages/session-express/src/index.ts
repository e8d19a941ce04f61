export type { RequestSession, SessionData } from "./augment.js";
export type { HeaderCommit } from "./commit-before-headers.js";
export { commitBeforeHeaders } from "./commit-before-headers.js";
export type {
  ExpressAdapterOptions,
  KvCookieOptions,
  KvSessionAnyOptions,
  KvSessionCoreOptions,
  KvSessionOptions,
  KvSessionSealedOptions,
  SessionMiddleware,
  SessionRequestLike,
} from "./middleware.js";
export { bindUser, coreSession, kvSession, sessionUserId } from "./middleware.js";
export type { Callback, ExpressSession, SessionCookieInfo } from "./session-object.js";
