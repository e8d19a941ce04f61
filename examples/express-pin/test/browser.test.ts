import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemo } from "./server.js";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const inCi = process.env.CI === "true" || process.env.CI === "1";
const haveChromium = existsSync(CHROMIUM);

if (!haveChromium) {
  if (inCi)
    it("Debian Chromium is installed at /usr/bin/chromium (required when CI=true)", () => {
      throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install -y chromium`);
    });
  else it.skip(`real-browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`, () => {});
}

const NAME = "Zoë Quartermaine";
const PIN = "5831";

/** Every way someone might try to read the cookie value: raw, URL-decoded, base64/base64url-decoded per part. */
function readings(value: string): string[] {
  const out = [value, decodeURIComponent(value)];
  for (const part of [value, ...value.split(".")]) {
    out.push(Buffer.from(part, "base64url").toString("latin1"));
    out.push(Buffer.from(part, "base64").toString("utf8"));
  }
  return out;
}

describe.skipIf(!haveChromium)("express-pin in a real browser (Debian Chromium)", () => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const newPage = async (): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext();
    contexts.push(context);
    return { context, page: await context.newPage() };
  };

  beforeAll(async () => {
    demo = await startDemo();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  });
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await demo?.stop();
  });

  const sessionCookie = async (context: BrowserContext) =>
    (await context.cookies(demo.base)).find((c) => c.name === "sid");

  it("flows across navigations; the cookie is HttpOnly, invisible to scripts, and opaque; a replay after logout gets nothing", async () => {
    const { context, page } = await newPage();
    await page.goto(demo.base);
    await expect(page.textContent("#who")).resolves.toBe("Not logged in.");
    // The page hands every visitor a session for its CSRF token.
    const anonymous = await sessionCookie(context);
    expect(anonymous).toBeDefined();

    await page.fill('input[name="name"]', NAME);
    await page.fill('input[name="pin"]', PIN);
    await Promise.all([page.waitForURL(`${demo.base}/`), page.click('button:has-text("Log in")')]);
    await expect(page.textContent("#who")).resolves.toContain(`Logged in as ${NAME}`);
    expect(await page.content()).not.toContain(PIN);

    const cookie = await sessionCookie(context);
    expect(cookie!.value).not.toBe(anonymous!.value);
    expect(cookie!.httpOnly).toBe(true);
    expect(cookie!.sameSite).toBe("Lax");
    expect(await page.evaluate("document.cookie")).toBe("");
    for (const text of readings(cookie!.value)) {
      expect(text).not.toContain(PIN);
      for (const word of NAME.split(" ")) expect(text.toLowerCase()).not.toContain(word.toLowerCase());
    }

    // A fresh navigation (not a form response) still sees the session.
    await page.goto(`${demo.base}/?again`);
    await expect(page.textContent("#who")).resolves.toContain(`Logged in as ${NAME}`);

    await Promise.all([page.waitForURL(`${demo.base}/`), page.click('button:has-text("Log out")')]);
    await expect(page.textContent("#who")).resolves.toBe("Not logged in.");

    // Someone who copied the cookie before logout replays it from another browser profile.
    const thief = await newPage();
    await thief.context.addCookies([cookie!]);
    await thief.page.goto(demo.base);
    await expect(thief.page.textContent("#who")).resolves.toBe("Not logged in.");
    expect(await thief.page.content()).not.toContain(NAME);
    // The dead ID was replaced (the page hands every visitor a fresh session for its CSRF token).
    expect((await sessionCookie(thief.context))?.value).not.toBe(cookie!.value);
  });

  it("log out everywhere ends the session in the other browser profile", async () => {
    const login = async (page: Page) => {
      await page.goto(demo.base);
      await page.fill('input[name="name"]', "ursula");
      await page.fill('input[name="pin"]', "0007");
      await Promise.all([page.waitForURL(`${demo.base}/`), page.click('button:has-text("Log in")')]);
      await expect(page.textContent("#who")).resolves.toContain("Logged in as ursula");
    };
    const laptop = await newPage();
    const phone = await newPage();
    await login(laptop.page);
    await login(phone.page);
    await Promise.all([
      laptop.page.waitForURL(`${demo.base}/`),
      laptop.page.click('button:has-text("Log out everywhere")'),
    ]);
    await phone.page.reload();
    await expect(phone.page.textContent("#who")).resolves.toBe("Not logged in.");
  });
});
