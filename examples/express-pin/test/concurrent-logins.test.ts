import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "@kvsession/test-helpers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOGIN_LIMITS } from "../src/throttle.js";
import { browser } from "./http-browser.js";
import { type Demo, startDemo } from "./server.js";

// On Redis each store call is a network round trip, so concurrent logins interleave for real.
let redis: ChildProcess;
let dir: string;
let demo: Demo;

beforeAll(async () => {
  const port = await freePort();
  dir = mkdtempSync(join(tmpdir(), "express-pin-redis-"));
  redis = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  demo = await startDemo({ trustProxy: "loopback" }, { REDIS_URL: `redis://127.0.0.1:${port}` });
  // The store reconnects by itself: wait until redis-server answers.
  for (let i = 0; ; i++) {
    try {
      await demo.store.has("ping");
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
});
afterAll(async () => {
  await demo?.stop();
  redis?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("concurrent logins on Redis", () => {
  it("first logins of one new name with different PINs: exactly one gets in", async () => {
    const contenders = await Promise.all(
      ["1001", "1002", "1003", "1004"].map(async (pin, i) => {
        const b = browser(demo.base, { "x-forwarded-for": `10.1.0.${i + 1}` });
        await b.open();
        return { b, pin };
      }),
    );
    await Promise.all(contenders.map(({ b, pin }) => b.post("/login", { name: "newcomer", pin })));
    const inside = contenders.filter(({ b }) => b.html.includes("Logged in as <strong>newcomer</strong>"));
    const refused = contenders.filter(({ b }) => b.html.includes("The PIN does not match"));
    expect([inside.length, refused.length]).toEqual([1, 3]);
    // The one inside registered the PIN: it, and only it, logs in again.
    const again = browser(demo.base, { "x-forwarded-for": "10.1.0.9" });
    await again.open();
    await again.post("/login", { name: "newcomer", pin: inside[0]!.pin });
    expect(again.html).toContain("Logged in as <strong>newcomer</strong>");
  });

  it(`parallel guesses at one name: only ${LOGIN_LIMITS.perName} reach the PIN check, the rest get 429`, async () => {
    const owner = browser(demo.base, { "x-forwarded-for": "10.2.0.1" });
    await owner.open();
    expect(await owner.post("/login", { name: "target", pin: "9999" })).toBe(303);
    const guessers = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const b = browser(demo.base, { "x-forwarded-for": `10.2.1.${i + 1}` });
        await b.open();
        return b;
      }),
    );
    const statuses = await Promise.all(
      guessers.map((b, i) => b.post("/login", { name: "target", pin: String(1000 + i) })),
    );
    expect(statuses.filter((s) => s === 303)).toHaveLength(LOGIN_LIMITS.perName);
    expect(statuses.filter((s) => s === 429)).toHaveLength(12 - LOGIN_LIMITS.perName);
  });
});
