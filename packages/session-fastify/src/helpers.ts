import type { JsonValue } from "@kvsession/kv";
import type { Session } from "@kvsession/session";
import type { FastifyRequest } from "fastify";
import { slotOf } from "./plugin.js";
import type { SessionShape } from "./types.js";

function slotFor(request: FastifyRequest) {
  const slot = slotOf(request);
  if (slot === null)
    throw new TypeError(
      "request.session is not open: is @kvsession/session-fastify registered for this route?",
    );
  return slot;
}

/**
 * The `@kvsession/session` object behind `request.session`, with the property changes made so far
 * handed to it: for `flash`/`flashes`, `update`, `listUserSessions({ current })` or
 * `revokeUser(id, { except })`. Use `request.session.regenerate()`/`destroy()` rather than the
 * core's, so `request.session` follows.
 *
 * @example
 * await app.sessions.revokeUser(userId, { except: coreSession(request) });
 */
export function coreSession(request: FastifyRequest): Session<SessionShape> {
  const slot = slotFor(request);
  slot.flush();
  // The same object: typed with the data the app declared, as `fastify.sessions` is.
  return slot.core as unknown as Session<SessionShape>;
}

/**
 * Login: a new session ID (fixation defence) bound to `userId`, keeping the data, so
 * `fastify.sessions.revokeUser(userId)` can log the user out everywhere and
 * `listUserSessions(userId)` lists the user's devices.
 *
 * @example
 * await bindUser(request, user.id, { ua: request.headers["user-agent"] ?? null });
 */
export async function bindUser(request: FastifyRequest, userId: string, meta?: JsonValue): Promise<void> {
  const slot = slotFor(request);
  try {
    slot.flush();
    await slot.core.bindUser(userId, meta);
    slot.id = await slot.core.handle();
    slot.mayHold = false;
  } catch (err) {
    throw slot.failed(err);
  }
}

/**
 * The user the session is bound to by `bindUser`, or undefined.
 *
 * @example
 * const userId = await sessionUserId(request);
 */
export async function sessionUserId(request: FastifyRequest): Promise<string | undefined> {
  const slot = slotFor(request);
  try {
    return await slot.core.userId();
  } catch (err) {
    throw slot.failed(err);
  }
}
