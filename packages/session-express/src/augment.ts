import type { ExpressSession } from "./session-object.js";

/**
 * Your app's session data, declared once: `req.session` then types it (each key optional,
 * since a new session starts empty). The same idea as express-session's `SessionData`.
 *
 * @example
 * declare module "@kvsession/session-express" {
 *   interface SessionData {
 *     views: number;
 *     cart: string[];
 *   }
 * }
 */
// biome-ignore lint/suspicious/noEmptyInterface: apps add their keys to it by declaration merging.
export interface SessionData {}

/** What `req.session` is under the middleware: the methods, and your `SessionData` keys as plain properties. */
export type RequestSession = ExpressSession & Partial<SessionData>;

declare global {
  namespace Express {
    // Express's Request (@types/express) extends this interface: `req.session` and `req.sessionID`
    // are typed for every app that imports the middleware, with no @types/express-session.
    interface Request {
      /** Set by the kvSession middleware (absent on routes it does not cover, or that it skips). */
      session: RequestSession;
      /** The store handle of the session; `undefined` until it is stored. */
      sessionID: string | undefined;
    }
  }
}
