import { IncomingMessage } from "node:http";

/**
 * `req.session` and `req.sessionID` of the requests whose prototype carries the accessors below: one
 * entry per request: WeakMap entries cost GC upkeep (perf: two for req and one for res took 2.2% of the
 * main thread; one each, 1.0%).
 */
const slots = new WeakMap<object, { session: unknown; id: unknown }>();
const hooked = new WeakSet<object>();

function slotOf(req: object): { session: unknown; id: unknown } {
  let slot = slots.get(req);
  if (slot === undefined) {
    slot = { session: undefined, id: undefined };
    slots.set(req, slot);
  }
  return slot;
}

/**
 * Makes `req.session` and `req.sessionID` accessors on the request's prototype
 * when a framework put one between the request and `http.IncomingMessage.prototype`
 * (Express's `app.request`; a sub-app's inherits from its parent's), installed
 * once. Why: Express swaps the prototype of every request, after which V8 cannot
 * share hidden-class transitions, so each property added to a request builds a
 * new hidden class and copies the request's ~40 fields — two properties cost
 * ~25k instructions per request (callgrind), an eighth of the middleware's
 * whole cost. The values live in one WeakMap record per request (`slots`).
 *
 * They read and assign like the data properties they replace. An assignment of
 * something that is not ours (express-session's own `Session`, mounted on other
 * routes of the same app) becomes a plain own property of that request, so that
 * library — and its `delete req.session` — behaves exactly as without us. What
 * differs: `"session" in req` is true on every request of the app, and
 * `delete req.session` does not remove our session (assign `undefined`, or use
 * `req.session.destroy()`). A plain `http` request (no framework prototype)
 * gets plain own properties; the built-in prototype is never touched.
 */
export function hookRequestProto(req: object, isOurs: (value: unknown) => boolean): void {
  const proto = Object.getPrototypeOf(req) as object | null;
  if (proto === null || proto === IncomingMessage.prototype || hooked.has(proto)) return;
  if (!Object.prototype.isPrototypeOf.call(IncomingMessage.prototype, proto)) return;
  // Something already defines them on the way (another session library): leave it alone.
  if ("session" in proto || "sessionID" in proto) return;
  hooked.add(proto);
  Object.defineProperty(proto, "session", {
    configurable: true,
    enumerable: false,
    get(this: object) {
      return slots.get(this)?.session;
    },
    set(this: object, value: unknown) {
      if (value === undefined || isOurs(value)) slotOf(this).session = value;
      else
        Object.defineProperty(this, "session", {
          value,
          writable: true,
          enumerable: true,
          configurable: true,
        });
    },
  });
  Object.defineProperty(proto, "sessionID", {
    configurable: true,
    enumerable: false,
    get(this: object) {
      return slots.get(this)?.id;
    },
    set(this: object, value: unknown) {
      slotOf(this).id = value;
    },
  });
}
