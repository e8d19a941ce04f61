import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { escapeHtml } from "../src/html.js";
import { startDemo } from "./server.js";

let demo: Awaited<ReturnType<typeof startDemo>>;
beforeAll(async () => {
  demo = await startDemo();
});
afterAll(() => demo.stop());

/** A minimal browser over fetch: one cookie jar, follows 303s by hand, reads the CSRF token from the page. */
function browser() {
  let cookie: string | undefined;
  let html = "";
  const request = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (cookie) headers.set("cookie", cookie);
    const res = await fetch(demo.base + path, { ...init, headers, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) cookie = /Max-Age=0/i.test(c) ? undefined : c.split(";")[0];
    return res;
  };
  const self = {
    get cookie() {
      return cookie;
    },
    set cookie(c: string | undefined) {
      cookie = c;
    },
    get html() {
      return html;
    },
    async open() {
      const res = await request("/");
      html = await res.text();
      return html;
    },
    csrf: () => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "",
    async post(
      path: string,
      fields: Record<string, string> = {},
      csrf: string = self.csrf(),
    ): Promise<number> {
      const res = await request(path, {
        method: "POST",
        body: new URLSearchParams({ _csrf: csrf, ...fields }),
      });
      if (res.status === 303) return self.open().then(() => res.status);
      html = await res.text();
      return res.status;
    },
  };
  return self;
}

describe("express-pin over HTTP", () => {
  it("sets a name and PIN, shows only the PIN's last digit, escapes the name", async () => {
    const b = browser();
    await b.open();
    const name = `<img src=x onerror=alert(1)> "Ada" & co`;
    expect(await b.post("/profile", { name, pin: "4827" })).toBe(303);
    expect(b.html).toContain(`<strong id="name">${escapeHtml(name)}</strong>`);
    expect(b.html).not.toContain("<img src=x");
    expect(b.html).toContain("•••7");
    expect(b.html).not.toContain("4827");
  });

  it("refuses a POST without the session's CSRF token, or with another session's", async () => {
    const a = browser();
    const b = browser();
    await a.open();
    await b.open();
    expect(await a.post("/profile", { name: "x", pin: "1234" }, "")).toBe(403);
    expect(await a.post("/profile", { name: "x", pin: "1234" }, b.csrf())).toBe(403);
    await a.open();
    expect(a.html).not.toContain('id="name"');
  });

  it("rejects a PIN that is not 4 digits", async () => {
    const b = browser();
    await b.open();
    await b.post("/profile", { name: "Bob", pin: "12a4" });
    expect(b.html).toContain("A PIN is exactly 4 digits.");
    expect(b.html).not.toContain('id="name"');
  });

  it("logs in with a new session ID, logs out, and an old cookie gets nothing", async () => {
    const b = browser();
    await b.open();
    await b.post("/profile", { name: "carol", pin: "1111" });
    const before = b.cookie;
    await b.post("/login");
    expect(b.html).toContain("Logged in as <strong>carol</strong> (1 active session)");
    expect(b.cookie).not.toBe(before);
    const loggedIn = b.cookie;
    await b.post("/logout");
    expect(b.html).toContain("Not logged in.");
    const replay = browser();
    replay.cookie = loggedIn;
    await replay.open();
    expect(replay.html).toContain("Not logged in.");
    expect(replay.html).not.toContain("carol");
  });

  it("a wrong PIN for a registered name does not log in", async () => {
    const first = browser();
    await first.open();
    await first.post("/profile", { name: "dave", pin: "2222" });
    await first.post("/login");
    const other = browser();
    await other.open();
    await other.post("/profile", { name: "dave", pin: "3333" });
    await other.post("/login");
    expect(other.html).toContain("The PIN does not match");
    expect(other.html).toContain("Not logged in.");
  });

  it("log out everywhere ends every session of the user", async () => {
    const devices = [browser(), browser(), browser()];
    for (const d of devices) {
      await d.open();
      await d.post("/profile", { name: "erin", pin: "4444" });
      await d.post("/login");
    }
    expect(devices[2]!.html).toContain("(3 active sessions)");
    await devices[0]!.post("/logout-everywhere");
    for (const d of devices) {
      await d.open();
      expect(d.html).toContain("Not logged in.");
    }
  });
});
