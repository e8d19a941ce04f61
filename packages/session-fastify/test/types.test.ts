// Checked by `tsc -p packages/session-fastify/tsconfig.json` (the package's typecheck): the
// declaration merging below types request.session for every test file of this package.
import { createMemoryStore } from "@kvsession/kv";
import Fastify from "fastify";
import { expect, expectTypeOf, it } from "vitest";
import kvSession from "../src/index.js";
import { SECRET } from "./helpers.js";

declare module "../src/index.js" {
  interface FastifySessionData {
    n: number;
    user: string;
    blind: boolean;
    saved: string;
    x: number;
  }
}

it("types request.session from the merged FastifySessionData", async () => {
  const app = Fastify();
  await app.register(kvSession, { store: createMemoryStore(), secrets: [SECRET] });
  app.get("/", async (request) => {
    expectTypeOf(request.session.get("n")).resolves.toEqualTypeOf<number | undefined>();
    // @ts-expect-error a string is not a number
    request.session.set("n", "1");
    // @ts-expect-error an undeclared key
    await request.session.get("nope");
    request.session.set("n", 1);
    return { ok: true };
  });
  const res = await app.inject("/");
  expect(res.statusCode).toBe(200);
  await app.close();
});
