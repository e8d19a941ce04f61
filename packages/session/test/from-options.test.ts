import { createMemoryStore } from "@kvsession/kv";
import { afterEach, describe, expect, it, vi } from "vitest";
import { checkSerializeOption, createSessionsFrom, SessionConfigError } from "../src/index.js";
import { SECRET } from "./helpers.js";

afterEach(() => vi.unstubAllEnvs());

const withCookie = (cookie: unknown) => ({ store: createMemoryStore(), secrets: [SECRET], cookie }) as never;
const sealedWithCookie = (cookie: unknown) => ({ sealed: true, secrets: [SECRET], cookie }) as never;

describe("createSessionsFrom: the keys inside cookie", () => {
  it.each([
    ["maxAge", { maxAge: 60_000 }, /"cookie.maxAge": .*persistent: true.*setCookieMaxAge/],
    ["expires", { expires: new Date(0) }, /"cookie.expires": a fixed date/],
    ["httpOnly: false", { httpOnly: false }, /"cookie.httpOnly": .*always HttpOnly/],
    ["signed", { signed: true }, /"cookie.signed": the cookie is always signed/],
    ["partitioned", { partitioned: true }, /"cookie.partitioned"/],
    ["a misspelling", { smaeSite: "Lax" }, /"cookie.smaeSite": the cookie options are name, path/],
  ])("refuses %s with a hint, in both modes", (_, cookie, message) => {
    expect(() => createSessionsFrom(withCookie(cookie))).toThrow(SessionConfigError);
    expect(() => createSessionsFrom(withCookie(cookie))).toThrow(message);
    expect(() => createSessionsFrom(sealedWithCookie(cookie))).toThrow(message);
  });

  it("accepts httpOnly: true (what always happens) and undefined values", () => {
    const sessions = createSessionsFrom(withCookie({ httpOnly: true, maxAge: undefined, name: "app" }));
    expect(typeof sessions.open).toBe("function");
  });

  it("refuses a cookie that is not an object", () => {
    expect(() => createSessionsFrom(withCookie("sid"))).toThrow(/options.cookie must be an object/);
    expect(() => createSessionsFrom(withCookie(null))).toThrow(/options.cookie must be an object/);
  });

  it("refuses secure: false in production, allows it elsewhere, and allows the default there", () => {
    expect(() => createSessionsFrom(withCookie({ secure: false }))).not.toThrow();
    vi.stubEnv("NODE_ENV", "production");
    expect(() => createSessionsFrom(withCookie({ secure: false }))).toThrow(
      /cookie.secure: false with NODE_ENV=production .*remove it/,
    );
    expect(() => createSessionsFrom(withCookie({ secure: "auto" }))).not.toThrow();
    expect(() => createSessionsFrom(withCookie({}))).not.toThrow();
  });
});

describe("checkSerializeOption", () => {
  it("passes booleans and valid lease timings through", () => {
    expect(checkSerializeOption(true, "x")).toBe(true);
    expect(checkSerializeOption(false, "x")).toBe(false);
    expect(checkSerializeOption({ waitMs: 50 }, "x")).toEqual({ waitMs: 50 });
  });

  it.each([
    ["a string", "yes", /route\.serialize takes true, false or lease timings/],
    ["null", null, /route\.serialize takes true, false or lease timings/],
    [
      "an unknown timing",
      { wait: 5 },
      /unknown lease timing "wait"; the timings are leaseMs, waitMs, maxHoldMs/,
    ],
    ["a negative timing", { waitMs: -1 }, /route\.serialize: serialize\.waitMs must be a positive integer/],
    ["a hold shorter than the lease", { leaseMs: 10, maxHoldMs: 5 }, /maxHoldMs must be at least leaseMs/],
  ])("refuses %s", (_, value, message) => {
    expect(() => checkSerializeOption(value, "route.serialize")).toThrow(SessionConfigError);
    expect(() => checkSerializeOption(value, "route.serialize")).toThrow(message);
  });
});
