import type { Session, SessionData } from "@kvsession/session";
import { SessionBusyError } from "@kvsession/session";
import type { FastifyReply } from "fastify";
import { withStatus } from "./errors.js";

/** The status and headers of a reply at the moment the route sent it. */
export interface SentHead {
  status: number;
  headers: ReturnType<FastifyReply["getHeaders"]>;
}

const noop = () => {};

/**
 * One request's session bookkeeping, read by the plugin's hooks: the core session, whether it
 * failed, and where its commit stands. `request.session` (either kind) works through it.
 */
export class Slot {
  /** The first session failure of this request: its error response must not write the session again. */
  failure: unknown = undefined;
  /** This request may hold a stored session (serialised mode) until it commits: it named one, and loading did not find it gone. */
  mayHold = false;
  committed = false;
  /** Set while the commit runs: the head of the reply the route sent, which the commit holds back. */
  committing: SentHead | null = null;
  /** The route sent again while the commit ran (the late send was dropped). */
  lateSend = false;
  /** The public handle of the session this request holds, once known. */
  id: string | undefined = undefined;
  /** The session's own cookie lifetime as last read from the core (undefined: none). */
  cookieMaxAge: number | null | undefined = undefined;
  /** The app's cookie lifetime (null: browser-session; undefined: a core built elsewhere decides). */
  appCookieMaxAge: number | null | undefined = undefined;
  /** The route set the lifetime in this request: the core holds it as a pending change. */
  cookieMaxAgeSet = false;
  /** Hands changes kept outside the core (property writes) to it before a save or the commit. */
  flush: () => void = noop;
  constructor(readonly core: Session<SessionData>) {}

  /** Remembers a failure and gives it its HTTP status; returns the error to throw. */
  failed(err: unknown): unknown {
    this.failure ??= err;
    return withStatus(err);
  }

  /**
   * Ends this request's hold on the session without writing what it changed: after a failure, or
   * for a reply that never reaches `onSend` (hijacked). Dropping the changes first makes the commit
   * write nothing but the release of a serialised request's lease. A request that never loaded a
   * stored session holds nothing, and one whose wait timed out holds nothing either.
   */
  release(): void {
    if (this.committed) return;
    this.committed = true;
    if (!this.mayHold || this.failure instanceof SessionBusyError) return;
    this.core
      .reload()
      .catch(noop)
      .then(() => this.core.commit())
      .catch(noop);
  }
}
