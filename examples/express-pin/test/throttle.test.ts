import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOGIN_LIMITS } from "../src/throttle.js";
import { browser } from "./http-browser.js";
import { type Demo, startDemo } from "./server.js";

// The throttle reads the app's clock: the tests move it, so no verdict waits on real time.
let now = Date.parse("2030-01-01T00:00:00Z");
const advance = (ms: number) => {
  now += ms;
};

let demo: Demo;
beforeAll(async () => {
  demo = await startDemo({ now: () => now, trustProxy: "loopback" });
});
afterAll(() => demo.stop());

/** A browser whose requests come, through the trusted proxy, from `ip`. */
async function from(ip: string) {
  const b = browser(demo.base, { "x-forwarded-for": ip });
  await b.open();
  return b;
}

const { perName, perIp, firstLockMs } = LOGIN_LIMITS;

describe("PIN guessing is throttled", () => {
  it(`locks a name after ${perName} wrong PINs, for every IP and even for the right PIN; the lock doubles`, async () => {
    const owner = await from("10.0.1.1");
    expect(await owner.post("/login", { name: "victor", pin: "1111" })).toBe(303);
    await owner.post("/logout");

    const guesser = await from("10.0.1.2");
    for (let i = 0; i < perName; i++) {
      expect(await guesser.post("/login", { name: "victor", pin: String(2000 + i) })).toBe(303);
      expect(guesser.html).toContain("The PIN does not match");
    }
    expect(await guesser.post("/login", { name: "victor", pin: "2999" })).toBe(429);
    expect(guesser.last.headers.get("retry-after")).toBe(String(firstLockMs / 1000));

    // The owner, from elsewhere and with the right PIN, waits too: the name is what is guessed at.
    expect(await owner.post("/login", { name: "victor", pin: "1111" })).toBe(429);

    advance(firstLockMs);
    expect(await guesser.post("/login", { name: "victor", pin: "3000" })).toBe(303);
    expect(await guesser.post("/login", { name: "victor", pin: "3001" })).toBe(429);
    expect(guesser.last.headers.get("retry-after")).toBe(String((2 * firstLockMs) / 1000));

    advance(2 * firstLockMs);
    expect(await owner.post("/login", { name: "victor", pin: "1111" })).toBe(303);
    expect(owner.html).toContain("Logged in as <strong>victor</strong>");
    // A success forgets the name's failures.
    expect(await guesser.post("/login", { name: "victor", pin: "3002" })).toBe(303);
    expect(guesser.html).toContain("The PIN does not match");
  });

  it(`locks an IP after ${perIp} wrong PINs across names; other IPs log in`, async () => {
    const owners = await from("10.0.2.1");
    for (let i = 0; i <= perIp; i++) {
      expect(await owners.post("/login", { name: `user${i}`, pin: "1234" })).toBe(303);
      await owners.post("/logout");
    }
    const sprayer = await from("10.0.2.2");
    for (let i = 0; i < perIp; i++) {
      expect(await sprayer.post("/login", { name: `user${i}`, pin: "4321" })).toBe(303);
      expect(sprayer.html).toContain("The PIN does not match");
    }
    expect(await sprayer.post("/login", { name: `user${perIp}`, pin: "4321" })).toBe(429);
    expect(Number(sprayer.last.headers.get("retry-after"))).toBeGreaterThan(0);

    expect(await owners.post("/login", { name: `user${perIp}`, pin: "1234" })).toBe(303);
    expect(owners.html).toContain(`Logged in as <strong>user${perIp}</strong>`);
  });

  it("successful logins from one IP do not count against it", async () => {
    const office = await from("10.0.3.1");
    for (let i = 0; i <= perIp; i++) {
      expect(await office.post("/login", { name: `colleague${i}`, pin: "5555" })).toBe(303);
      expect(office.html).toContain(`Logged in as <strong>colleague${i}</strong>`);
      await office.post("/logout");
    }
  });
});
