// Checked by `tsc -p packages/session-fastify/tsconfig.json` (the package's typecheck): the
// declaration merging below types request.session for every test file of this package.
import { createMemoryStore } from "@kvsession/kv";
import type { Sessions, UserSessionInfo } from "@kvsession/session";
import { SECRET } from "@kvsession/test-helpers";
import Fastify from "fastify";
import { expect, expectTypeOf, it } from "vitest";
import kvSession, { type KvSessionOptions, type LazySession } from "../src/index.js";

declare module "../src/index.js" {
  interface FastifySessionData {
    n: number;
    user: string;
    blind: boolean;
    saved: string;
    x: number;
    cart: string[];
    userId: number;
    flash: { info: string[] };
    count: number;
    _csrf: string;
    passport: string;
    held: boolean;
    hijacked: boolean;
  }
}

it("types request.session and fastify.sessions from the merged declarations", async () => {
  const app = Fastify();
  await app.register(kvSession, { store: createMemoryStore(), secrets: [SECRET] });
  expectTypeOf(app.sessions).toEqualTypeOf<Sessions<import("../src/index.js").FastifySessionData>>();
  expectTypeOf(app.sessions.listUserSessions("ada")).resolves.toEqualTypeOf<UserSessionInfo[]>();
  app.get("/", async (request) => {
    expectTypeOf(request.session.get("n")).toEqualTypeOf<number | undefined>();
    expectTypeOf(request.session.n).toEqualTypeOf<number | undefined>();
    // @ts-expect-error a string is not a number
    request.session.set("n", "1");
    // @ts-expect-error a string is not a number
    request.session.n = "1";
    // @ts-expect-error an undeclared key
    request.session.get("nope");
    expectTypeOf(request.session.regenerate(["n"])).toEqualTypeOf<Promise<void>>();
    expectTypeOf(request.session.save(() => {})).toEqualTypeOf<void>();
    request.session.set("n", 1);
    return { ok: true };
  });
  const res = await app.inject("/");
  expect(res.statusCode).toBe(200);
  await app.close();
});

it("the lazy API is promise-based", () => {
  const get = (s: LazySession) => s.get("n");
  expectTypeOf(get).returns.toEqualTypeOf<Promise<number | undefined>>();
  expectTypeOf<ReturnType<LazySession["all"]>>().resolves.toHaveProperty("cart");
});

it("the plugin's options are checked against the declared mode", () => {
  const store = createMemoryStore();
  const plain: KvSessionOptions = { store, secrets: [SECRET] };
  // @ts-expect-error lazy: true needs `KvSessionTypes { lazy: true }` declared
  const lazy: KvSessionOptions = { store, secrets: [SECRET], lazy: true };
  // @ts-expect-error sealed mode needs `KvSessionTypes { sealed: true }` declared
  const sealed: KvSessionOptions = { sealed: true, secrets: [SECRET] };
  expect([plain, lazy, sealed]).toHaveLength(3);
});
