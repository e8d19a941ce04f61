import { scrypt } from "node:crypto";
import { withCodec } from "@kvsession/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { escapeHtml } from "../src/html.js";
import { browser } from "./http-browser.js";
import { type Demo, startDemo } from "./server.js";

let demo: Demo;
beforeAll(async () => {
  demo = await startDemo();
});
afterAll(() => demo.stop());

async function loggedIn(name: string, pin: string) {
  const b = browser(demo.base);
  await b.open();
  expect(await b.post("/login", { name, pin })).toBe(303);
  return b;
}

describe("express-pin over HTTP", () => {
  it("logs in with a name and a PIN (the first login registers the name), escaping the name", async () => {
    const name = `<img src=x onerror=alert(1)> "Ada" & co`;
    const b = await loggedIn(name, "4827");
    expect(b.html).toContain(`Logged in as <strong>${escapeHtml(name)}</strong> (1 active session)`);
    expect(b.html).not.toContain("<img src=x");
    expect(b.html).not.toContain("4827");
  });

  it("keeps neither the PIN nor the name in the session: only the user the session is bound to", async () => {
    const b = await loggedIn("frank", "5930");
    const session = demo.sessions.open({ cookieHeader: b.cookie, secure: false });
    const data = await session.all();
    expect(Object.keys(data).filter((k) => k !== "csrf" && k !== "notice")).toEqual([]);
    expect(JSON.stringify(data)).not.toContain("5930");
    expect(await session.userId()).toBe("frank");
  });

  it("stores the PIN as a salted scrypt hash of at least Node's default cost, never the PIN itself", async () => {
    await loggedIn("grace", "6041");
    const account = await withCodec<Record<string, unknown>>(demo.store.withPrefix("accounts:")).get("grace");
    expect(account).toBeDefined();
    expect(JSON.stringify(account)).not.toContain("6041");
    const { salt, hash, N } = account as { salt: string; hash: string; N: number };
    expect(N).toBeGreaterThanOrEqual(16384);
    const expected = await new Promise<string>((resolve, reject) =>
      scrypt("6041", salt, 32, { N, maxmem: 256 * N * 8 }, (err, key) =>
        err ? reject(err) : resolve(key.toString("base64url")),
      ),
    );
    expect(hash).toBe(expected);
  });

  it("every page is sent with Cache-Control: no-store, the logged-in page included", async () => {
    const b = browser(demo.base);
    await b.open();
    expect(b.last.headers.get("cache-control")).toBe("no-store");
    await b.post("/login", { name: "heidi", pin: "7152" });
    await b.open();
    expect(b.html).toContain("Logged in as <strong>heidi</strong>");
    expect(b.last.headers.get("cache-control")).toBe("no-store");
  });

  it("refuses a POST without the session's CSRF token, or with another session's", async () => {
    const a = browser(demo.base);
    const b = browser(demo.base);
    await a.open();
    await b.open();
    expect(await a.post("/login", { name: "mallory", pin: "1234" }, "")).toBe(403);
    expect(await a.post("/login", { name: "mallory", pin: "1234" }, b.csrf())).toBe(403);
    await a.open();
    expect(a.html).toContain("Not logged in.");
  });

  it("rejects a PIN that is not 4 digits, and a name with control characters", async () => {
    const b = browser(demo.base);
    await b.open();
    await b.post("/login", { name: "Bob", pin: "12a4" });
    expect(b.html).toContain("A PIN is exactly 4 digits.");
    await b.post("/login", { name: "Bob\u0000", pin: "1234" });
    expect(b.html).toContain("A name is 1 to 40 characters");
    expect(b.html).toContain("Not logged in.");
  });

  it("logs in with a new session ID, logs out, and an old cookie gets nothing", async () => {
    const b = browser(demo.base);
    await b.open();
    const before = b.cookie;
    await b.post("/login", { name: "carol", pin: "1111" });
    expect(b.html).toContain("Logged in as <strong>carol</strong> (1 active session)");
    expect(b.cookie).not.toBe(before);
    const loggedInCookie = b.cookie;
    await b.post("/logout");
    expect(b.html).toContain("Not logged in.");
    const replay = browser(demo.base);
    replay.cookie = loggedInCookie;
    await replay.open();
    expect(replay.html).toContain("Not logged in.");
    expect(replay.html).not.toContain("carol");
  });

  it("a wrong PIN for a registered name does not log in", async () => {
    await loggedIn("dave", "2222");
    const other = browser(demo.base);
    await other.open();
    await other.post("/login", { name: "dave", pin: "3333" });
    expect(other.html).toContain("The PIN does not match");
    expect(other.html).toContain("Not logged in.");
  });

  it("log out everywhere ends every session of the user", async () => {
    const devices = [
      await loggedIn("erin", "4444"),
      await loggedIn("erin", "4444"),
      await loggedIn("erin", "4444"),
    ];
    expect(devices[2]!.html).toContain("(3 active sessions)");
    await devices[0]!.post("/logout-everywhere");
    for (const d of devices) {
      await d.open();
      expect(d.html).toContain("Not logged in.");
    }
  });
});
