import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { createMemoryStore } from "@kvsession/kv";
import { cookieJar, SECRET } from "@kvsession/test-helpers";
import { afterEach, describe, expect, it } from "vitest";
import { createHandler } from "./plain-fetch.js";

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

describe("the core from a plain fetch handler (README example)", () => {
  it("works called directly with Web Requests", async () => {
    const handle = createHandler(createMemoryStore(), SECRET);
    const r1 = await handle(new Request("https://example.test/"));
    expect(await r1.text()).toBe("views: 1\n");
    const [cookie] = r1.headers.getSetCookie();
    expect(cookie).toMatch(/^__Host-sid=.*; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    expect(r1.headers.get("cache-control")).toBe("no-store");
    const pair = cookie!.split(";")[0]!;
    const r2 = await handle(new Request("https://example.test/", { headers: { cookie: pair } }));
    expect(await r2.text()).toBe("views: 2\n");
    const out = await handle(
      new Request("https://example.test/logout", { method: "POST", headers: { cookie: pair } }),
    );
    expect(out.headers.getSetCookie()[0]).toMatch(/Max-Age=0/);
    const r3 = await handle(new Request("https://example.test/", { headers: { cookie: pair } }));
    expect(await r3.text()).toBe("views: 1\n");
  });

  it("works served by @hono/node-server on a real socket", async () => {
    const server = serve({
      fetch: createHandler(createMemoryStore(), SECRET),
      port: 0,
      hostname: "127.0.0.1",
    });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const b = cookieJar();
    expect(await (await b.fetch(url)).text()).toBe("views: 1\n");
    expect([...b.jar.keys()]).toEqual(["sid"]);
    expect(await (await b.fetch(url)).text()).toBe("views: 2\n");
  });
});
