import type { CommitResult } from "@kvsession/session";
import type { FastifyReply, FastifyRequest, onSendHookHandler } from "fastify";
import { withStatus } from "./errors.js";
import type { SentHead, Slot } from "./slot.js";

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

/**
 * The `onSend` hook: writes the session (property changes first), then appends its Set-Cookie and
 * Cache-Control to the reply. Callback style: the common case (session untouched) allocates no promise.
 */
export function commitHook(slotOf: (request: FastifyRequest) => Slot | null): onSendHookHandler {
  return (request, reply, payload, next) => {
    const s = slotOf(request);
    if (s === null) return next(null, payload);
    // A failed session call's error response: end the hold on the session, write nothing.
    if (s.failure !== undefined) {
      s.release();
      return next(null, payload);
    }
    if (s.committed) {
      // An error response after a failed commit passes here again: commit at most once.
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
    let committed: Promise<CommitResult>;
    try {
      // Property changes first; a throw from either fails the commit as a rejection would.
      s.flush();
      committed = s.core.commit();
    } catch (err) {
      committed = Promise.reject(err);
    }
    committed.then(
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
        s.failure ??= err;
        next(withStatus(err) as Error);
      },
    );
  };
}
