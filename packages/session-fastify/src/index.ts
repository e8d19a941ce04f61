export { withStatus } from "./errors.js";
export { bindUser, coreSession, sessionUserId } from "./helpers.js";
export type { LazySession } from "./lazy-session.js";
export type {
  KvSessionOptions,
  LazyOption,
  PrebuiltOptions,
  SealedModeOptions,
  StoreModeOptions,
} from "./options.js";
export { kvSession, kvSession as default } from "./plugin.js";
export type { Callback } from "./session-object.js";
export type {
  FastifySession,
  FastifySessionData,
  FastifySessionMethods,
  FastifySessions,
  KvSessionTypes,
  RouteSessionConfig,
  SessionShape,
} from "./types.js";
