import type { SealedSessions, SerializeOptions, SessionData, Sessions } from "@kvsession/session";
import {
  checkSerializeOption,
  createSessionsFrom,
  SessionConfigError,
  SessionStateError,
} from "@kvsession/session";
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { commitHook } from "./commit.js";
import { withStatus } from "./errors.js";
import { LazyRequestSession } from "./lazy-session.js";
import type { KvSessionOptions } from "./options.js";
import { isDestroyed, makeSessionObject } from "./session-object.js";
import { Slot } from "./slot.js";
import "./types.js";

type Core = Sessions<SessionData> | SealedSessions<SessionData>;
const kSlot = Symbol("kvsession.slot");
const kObject = Symbol("kvsession.object");
type WithSlot = FastifyRequest & { [kSlot]: Slot | null; [kObject]: object | null };

const NOT_LOADED =
  "request.session was read before @kvsession/session-fastify loaded it (in its onRequest hook): register the plugin before the plugins and hooks that use the session";

/** Splits the adapter's own options from the core's, and builds the core. */
type Serialize = boolean | SerializeOptions | undefined;

function setUp(options: KvSessionOptions): {
  sessions: Core;
  lazy: boolean;
  serialize: Serialize;
  cookieMaxAge: number | null | undefined;
} {
  const { lazy, ...rest } = (options ?? {}) as Record<string, unknown>;
  if (lazy !== undefined && typeof lazy !== "boolean")
    throw new SessionConfigError("options.lazy must be true or false");
  let serialize: Serialize;
  let coreOptions: Record<string, unknown> = rest;
  // With a core you built, `serialize` turns the mode on for this plugin's requests (with the core's
  // lease timings, or these).
  if ("sessions" in rest && rest.serialize !== undefined) {
    const { serialize: s, ...others } = rest;
    serialize = checkSerializeOption(s, "options.serialize");
    coreOptions = others;
  }
  const sessions = createSessionsFrom<SessionData>(
    coreOptions as Parameters<typeof createSessionsFrom<SessionData>>[0],
    "@kvsession/session-fastify",
  );
  // What request.session.cookie reports for a session without a lifetime of its own.
  const c = rest as { cookie?: { persistent?: boolean }; absoluteTimeoutMs?: number };
  const cookieMaxAge =
    "sessions" in rest
      ? undefined
      : c.cookie?.persistent === true
        ? (c.absoluteTimeoutMs ?? 12 * 3600_000)
        : null;
  return { sessions, lazy: lazy === true, serialize, cookieMaxAge };
}

/** This request's serialised-mode setting: its route's, else the plugin's (undefined: the core's). */
const serializeOf = (request: FastifyRequest, serialize: Serialize): Serialize =>
  request.routeOptions.config?.session?.serialize ?? serialize;

/** Whether a request with this setting runs in serialised mode. */
const isSerialized = (sessions: Core, serialize: Serialize): boolean =>
  serialize === undefined ? "serialized" in sessions && sessions.serialized : serialize !== false;

/** `serialize`: the request's own setting (`serializeOf`). */
function openSlot(
  sessions: Core,
  request: FastifyRequest,
  serialize: Serialize,
  appCookieMaxAge?: number | null,
): Slot {
  const raw = request.raw;
  const slot = new Slot(
    sessions.open({
      cookieHeader: raw.headers.cookie,
      secure: (raw.socket as { encrypted?: boolean } | null)?.encrypted === true,
      forwardedProto: raw.headers["x-forwarded-proto"],
      serialize,
    }),
  );
  // Only a request that names a stored session can come to hold one.
  slot.mayHold = raw.headers.cookie !== undefined;
  slot.appCookieMaxAge = appCookieMaxAge;
  return slot;
}

/**
 * A serialised request's reply that never reaches `onSend` (hijacked) must still end its hold on the
 * session, or the session would stay held; a client that went away mid-handler is not such a reply
 * (the handler still sends, and the commit runs then). Other requests hold nothing, and get no listener.
 */
function releaseOnClose(request: WithSlot, reply: FastifyReply): void {
  reply.raw.once("close", () => {
    const s = request[kSlot];
    if (s !== null && !s.committed && reply.sent) s.release();
  });
}

const plugin: FastifyPluginCallback<KvSessionOptions> = (fastify, options, done) => {
  let setup: ReturnType<typeof setUp>;
  try {
    setup = setUp(options);
  } catch (err) {
    done(err as Error);
    return;
  }
  const { sessions, lazy, serialize, cookieMaxAge } = setup;
  fastify.decorate("sessions", sessions as never);
  // A route's serialised-mode setting is checked when the route is added, not on its first request.
  fastify.addHook("onRoute", (route) => {
    const own = (route.config as { session?: { serialize?: unknown } } | undefined)?.session?.serialize;
    if (own !== undefined)
      checkSerializeOption(own, `route ${String(route.method)} ${route.url}: config.session.serialize`);
  });
  fastify.decorateRequest(kSlot as unknown as string, null);
  fastify.decorateRequest(kObject as unknown as string, null);

  if (lazy) {
    // A getter: the session is opened on first access only, so untouched routes pay nothing.
    fastify.decorateRequest("session", {
      getter(this: FastifyRequest) {
        const req = this as WithSlot;
        if (req[kObject] === null) {
          req[kSlot] = openSlot(sessions, req, serializeOf(req, serialize));
          req[kObject] = new LazyRequestSession(req[kSlot]);
        }
        return req[kObject] as never;
      },
    });
    fastify.addHook("onRequest", (request, reply, next) => {
      if (request.raw.headers.cookie !== undefined && isSerialized(sessions, serializeOf(request, serialize)))
        releaseOnClose(request as WithSlot, reply);
      next();
    });
  } else {
    fastify.decorateRequest("session", {
      getter(this: FastifyRequest) {
        const req = this as WithSlot;
        const obj = req[kObject];
        if (obj === null) throw new SessionStateError(NOT_LOADED);
        // As in @fastify/session: a destroyed session leaves request.session null.
        return (isDestroyed(obj) ? null : obj) as never;
      },
    });
    // Loaded before every other hook of the request (csrf checks and authentication run as route
    // onRequest/preValidation hooks), so `get` is synchronous and properties hold the data.
    fastify.addHook("onRequest", (request, reply, next) => {
      const req = request as WithSlot;
      const own = serializeOf(req, serialize);
      const slot = openSlot(sessions, req, own, cookieMaxAge);
      req[kSlot] = slot;
      if (request.raw.headers.cookie === undefined) {
        req[kObject] = makeSessionObject(slot, {});
        return next();
      }
      if (isSerialized(sessions, own)) releaseOnClose(req, reply);
      // Without a verifying cookie this resolves with no I/O; with one it reads the record.
      slot.core
        .all()
        .then(async (data) => {
          slot.id = await slot.core.handle();
          slot.cookieMaxAge = await slot.core.cookieMaxAge();
          slot.mayHold = slot.id !== undefined;
          req[kObject] = makeSessionObject(slot, data);
        })
        .then(
          () => next(),
          (err: unknown) => {
            // A load that failed took no hold on the session.
            slot.mayHold = false;
            next(slot.failed(err) as Error);
          },
        );
    });
  }
  fastify.addHook(
    "onSend",
    commitHook((request) => (request as WithSlot)[kSlot]),
  );
  done();
};

/** The per-request slot behind `request.session` (for the helpers). */
export function slotOf(request: FastifyRequest): Slot | null {
  return (request as WithSlot)[kSlot] ?? null;
}

/**
 * Sessions for Fastify 5 on any `@kvsession/kv` store (or in a sealed cookie), with the
 * `request.session` of @fastify/session: when a request carries a valid session cookie the session
 * is loaded before your hooks and handler, its data are plain properties (`request.session.views`)
 * and `get`/`set`, and `regenerate`/`destroy`/`reload`/`save` take a callback or return a promise.
 * `lazy: true` gives the promise-based API instead, with no store I/O on routes that never touch it.
 * A route's `config: { session: { serialize: true } }` serialises its requests per session.
 *
 * @example
 * import Fastify from "fastify";
 * import { createMemoryStore } from "@kvsession/kv";
 * import kvSession from "@kvsession/session-fastify";
 *
 * const app = Fastify();
 * await app.register(kvSession, { store: createMemoryStore(), secrets: [process.env.SESSION_SECRET!] });
 * app.get("/", async (request) => {
 *   const views = ((request.session.views as number | undefined) ?? 0) + 1;
 *   request.session.views = views;
 *   return { views };
 * });
 */
export const kvSession = fp(plugin, { name: "@kvsession/session-fastify", fastify: "5.x" });

export { withStatus };
