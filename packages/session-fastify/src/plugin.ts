import type { SealedSessions, SessionData, Sessions } from "@kvsession/session";
import { createSessionsFrom } from "@kvsession/session";
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { withStatus } from "./errors.js";
import type { KvSessionOptions } from "./options.js";
import { type FastifySession, RequestSession, type SentHead } from "./request-session.js";

declare module "fastify" {
  interface FastifyRequest {
    /** This request's session (kvsession). Opened on first access: a route that never reads it costs no store I/O. */
    readonly session: FastifySession;
  }
  interface FastifyInstance {
    /** The session core: `listUserSessions`, `revokeUser`, `revokeSession`, `revokeAll`. */
    sessions: Sessions<SessionData> | SealedSessions<SessionData>;
  }
}

const kSlot = Symbol("kvsession.session");
type WithSlot = FastifyRequest & { [kSlot]: RequestSession | null };

function openSession(
  sessions: Sessions<SessionData> | SealedSessions<SessionData>,
  request: FastifyRequest,
): RequestSession {
  const raw = request.raw;
  return new RequestSession(
    sessions.open({
      cookieHeader: raw.headers.cookie,
      secure: (raw.socket as { encrypted?: boolean } | null)?.encrypted === true,
      forwardedProto: raw.headers["x-forwarded-proto"],
    }),
  );
}

/** Puts back the status and headers the route had when it sent its reply. */
function restoreHead(reply: FastifyReply, head: SentHead): void {
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
  reply.headers(head.headers);
  reply.code(head.status);
}

function appendSetCookie(reply: FastifyReply, values: string[]): void {
  const prev = reply.getHeader("set-cookie");
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
  reply.removeHeader("set-cookie");
  reply.header("set-cookie", [...list, ...values]);
}

const plugin: FastifyPluginCallback<KvSessionOptions> = (fastify, options, done) => {
  let sessions: Sessions<SessionData> | SealedSessions<SessionData>;
  try {
    sessions = createSessionsFrom(options, "@kvsession/session-fastify");
  } catch (err) {
    done(err as Error);
    return;
  }
  fastify.decorate("sessions", sessions as Sessions<SessionData>);
  fastify.decorateRequest(kSlot as unknown as string, null);
  // A getter: the session object is built on first access only, so untouched routes pay nothing.
  fastify.decorateRequest("session", {
    getter(this: FastifyRequest) {
      const req = this as WithSlot;
      req[kSlot] ??= openSession(sessions, req);
      return req[kSlot];
    },
  });
  // Callback style: the common case (session untouched) allocates no promise.
  fastify.addHook("onSend", (request, reply, payload, next) => {
    const s = (request as WithSlot)[kSlot];
    // An error response after a failed commit passes here again: commit at most once, and
    // never retry a store that already failed in this request.
    if (s === null || s.failed) return next(null, payload);
    if (s.committed) {
      if (s.committing === null) return next(null, payload);
      // The reply is held for the commit but, for the route, already sent: a send now (an async
      // handler's reply.send() without `return reply`, a second send, the error handler of a
      // throw after a send) is one plain Fastify would ignore. Its hook chain is left unfinished.
      s.lateSend = true;
      reply.log.warn(
        `Reply was already sent, did you forget to "return reply" in the "${request.url}" (${request.method}) route?`,
      );
      return;
    }
    s.committed = true;
    s.committing = { status: reply.statusCode, headers: reply.getHeaders() };
    s.core.commit().then(
      (result) => {
        const sent = s.committing!;
        s.committing = null;
        // What a late send changed (a status, a content type) belongs to a reply that never goes out.
        if (s.lateSend) restoreHead(reply, sent);
        if (result.setCookie.length > 0) appendSetCookie(reply, result.setCookie);
        if (result.headers["cache-control"]) reply.header("cache-control", result.headers["cache-control"]);
        // As Fastify's own runner does for a hook's promise: a throw while it writes the head
        // (an invalid header value) goes to its error path, not to an unhandled rejection.
        try {
          next(null, payload);
        } catch (err) {
          next(err as Error);
        }
      },
      (err: unknown) => {
        s.committing = null;
        s.failed = true;
        next(withStatus(err) as Error);
      },
    );
  });
  done();
};

/**
 * Sessions for Fastify 5 on any `@kvsession/kv` store (or in a sealed cookie),
 * with the `request.session` API of @fastify/session, promise-based.
 *
 * @example
 * import Fastify from "fastify";
 * import { createMemoryStore } from "@kvsession/kv";
 * import kvSession from "@kvsession/session-fastify";
 *
 * const app = Fastify();
 * await app.register(kvSession, { store: createMemoryStore(), secrets: [process.env.SESSION_SECRET!] });
 * app.get("/", async (request) => {
 *   const views = ((await request.session.get("views")) as number | undefined) ?? 0;
 *   request.session.set("views", views + 1);
 *   return { views: views + 1 };
 * });
 */
export const kvSession = fp(plugin, { name: "@kvsession/session-fastify", fastify: "5.x" });
