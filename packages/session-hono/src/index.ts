export { retryResponse, withResponse } from "./errors.js";
export { type SessionVariables, session } from "./middleware.js";
export type { HonoSessionOptions } from "./options.js";
