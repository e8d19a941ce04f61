export { withStatus } from "./errors.js";
export type { KvSessionOptions, PrebuiltOptions, SealedModeOptions, StoreModeOptions } from "./options.js";
export { kvSession, kvSession as default } from "./plugin.js";
export type { FastifySession, FastifySessionData, SessionShape } from "./request-session.js";
