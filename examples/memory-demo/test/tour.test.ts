import { expect, it } from "vitest";
import { tour } from "../src/tour.js";

it("the demo runs and shows each guarantee", async () => {
  const lines = await tour();
  expect(lines).toEqual([
    'cart of ada: {"items":["tea"]}',
    "raw key in the store: cart:ada",
    "otp after its TTL: undefined",
    "two writers, same version: 1 won",
    expect.stringMatching(/^bad key refused: KV_INVALID_KEY — /),
    "polluting value refused: KV_CODEC",
  ]);
});
