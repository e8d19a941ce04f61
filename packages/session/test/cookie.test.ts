import { createMemoryStore } from "@kvsession/kv";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cookieValues, cookieValuesIn } from "../src/cookie.js";
import {
  type CookieOptions,
  createSessions,
  parseCookieHeader,
  SessionConfigError,
  serializeCookie,
} from "../src/index.js";
import { SECRET } from "./helpers.js";

describe("cookie parser", () => {
  it("keeps every pair in header order, duplicates included", () => {
    expect(parseCookieHeader("a=1; b=2;a=3")).toEqual([
      { name: "a", value: "1" },
      { name: "b", value: "2" },
      { name: "a", value: "3" },
    ]);
  });

  it("skips pairs that are not RFC 6265 instead of repairing them", () => {
    expect(parseCookieHeader('ok=1; bad name=2; c=has space; d="quoted"; e=a,b; f=a\\b; =x; g')).toEqual([
      { name: "ok", value: "1" },
      { name: "d", value: "quoted" },
    ]);
  });

  it("accepts string arrays and ignores anything that is not a string", () => {
    expect(parseCookieHeader(["a=1", "b=2"])).toEqual([
      { name: "a", value: "1" },
      { name: "b", value: "2" },
    ]);
    for (const v of [undefined, null, 42, {}, [1, 2]]) expect(parseCookieHeader(v)).toEqual([]);
  });

  it("the per-request fast path finds exactly what the full parser finds", () => {
    const part = fc.oneof(
      fc.constantFrom("sid", "a", " sid", "sid ", "s id", "", "=", '"x"', "x;y"),
      fc.string({ maxLength: 6 }),
    );
    const header = fc
      .array(fc.tuple(part, fc.constantFrom("=", "==", ""), part), { maxLength: 8 })
      .map((ps) => ps.map(([n, e, v]) => n + e + v).join(fc.sample(fc.constantFrom(";", "; ", " ;"), 1)[0]!));
    fc.assert(
      fc.property(header, (h) => {
        expect(cookieValuesIn(h, "sid")).toEqual(cookieValues(parseCookieHeader(h), "sid"));
      }),
      { numRuns: 2000 },
    );
  });

  it("bounds the work a huge header causes", () => {
    expect(parseCookieHeader("a=1;".repeat(100_000)).length).toBeLessThanOrEqual(256);
  });
});

describe("cookie serialiser", () => {
  it("refuses values and attributes that would break out of their field", () => {
    expect(() => serializeCookie("sid", "a;b")).toThrow(SessionConfigError);
    expect(() => serializeCookie("sid", "a\r\nSet-Cookie: x=1")).toThrow(SessionConfigError);
    expect(() => serializeCookie("s id", "a")).toThrow(SessionConfigError);
    expect(() => serializeCookie("sid", "a", { path: "/;Domain=evil" })).toThrow(SessionConfigError);
    expect(() => serializeCookie("sid", "a", { domain: "x\n" })).toThrow(SessionConfigError);
  });
});

describe("session cookie attributes", () => {
  async function setCookieFor(
    cookie: CookieOptions | undefined,
    input: Parameters<ReturnType<typeof createSessions>["open"]>[0],
    trustProxy = false,
  ) {
    const sessions = createSessions({ store: createMemoryStore(), secrets: [SECRET], cookie, trustProxy });
    const s = sessions.open(input);
    s.set("a", 1);
    return (await s.commit()).setCookie[0]!;
  }

  it("HTTPS: __Host- prefix, HttpOnly, Secure, SameSite=Lax, Path=/", async () => {
    expect(await setCookieFor(undefined, { secure: true })).toMatch(
      /^__Host-sid=\S+; Path=\/; HttpOnly; Secure; SameSite=Lax$/,
    );
  });

  it("plain HTTP: no prefix and no Secure attribute (secure: auto)", async () => {
    expect(await setCookieFor(undefined, { secure: false })).toMatch(
      /^sid=\S+; Path=\/; HttpOnly; SameSite=Lax$/,
    );
  });

  it("with a Domain: the __Secure- prefix (the __Host- prefix forbids Domain)", async () => {
    expect(await setCookieFor({ domain: "example.com" }, { secure: true })).toMatch(
      /^__Secure-sid=\S+; Path=\/; Domain=example.com; HttpOnly; Secure; SameSite=Lax$/,
    );
  });

  it("trustProxy believes the last X-Forwarded-Proto value only when switched on", async () => {
    expect(await setCookieFor(undefined, { secure: false, forwardedProto: "https" }, true)).toMatch(
      /^__Host-sid=.*Secure/,
    );
    expect(await setCookieFor(undefined, { secure: false, forwardedProto: "https" }, false)).toMatch(/^sid=/);
    // A client-sent "https" followed by what the proxy appended: the proxy's word counts.
    expect(await setCookieFor(undefined, { secure: false, forwardedProto: "https, http" }, true)).toMatch(
      /^sid=/,
    );
  });

  it("secure: true forces Secure; SameSite=None is downgraded to Lax on plain HTTP", async () => {
    expect(await setCookieFor({ secure: true }, { secure: false })).toMatch(/^__Host-sid=.*Secure/);
    expect(await setCookieFor({ sameSite: "None" }, { secure: false })).toMatch(/SameSite=Lax$/);
    expect(await setCookieFor({ sameSite: "None" }, { secure: true })).toMatch(/Secure; SameSite=None$/);
  });

  it("persistent cookies carry a Max-Age equal to the remaining absolute lifetime", async () => {
    expect(await setCookieFor({ persistent: true }, { secure: true })).toMatch(/; Max-Age=43200; Expires=/);
  });

  it("refuses bad configuration at creation", () => {
    const store = createMemoryStore();
    const bad = [
      { idleTimeoutMs: 1000, touchIntervalMs: 1000 },
      { idleTimeoutMs: 2000, absoluteTimeoutMs: 1000 },
      { idleTimeoutMs: -1 },
      { cookie: { name: "__Host-x" } },
      { cookie: { name: "a b" } },
      { cookie: { path: "/;x" } },
    ];
    for (const o of bad)
      expect(() => createSessions({ store, secrets: [SECRET], ...o })).toThrow(SessionConfigError);
  });
});
