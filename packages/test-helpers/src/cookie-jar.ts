/**
 * A browser's cookie jar, reduced to what adapter tests need: name=value pairs, cleared by
 * Max-Age=0, sent back on the next `fetch`.
 *
 * @example
 * const browser = cookieJar();
 * await browser.fetch(`${url}/login`, { method: "POST" });
 * expect(browser.jar.size).toBe(1);
 */
export function cookieJar() {
  const jar = new Map<string, string>();
  return {
    header: () => [...jar].map(([k, v]) => `${k}=${v}`).join("; "),
    take(res: Response) {
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(";");
        const eq = pair!.indexOf("=");
        const name = pair!.slice(0, eq).trim();
        if (/;\s*max-age=0/i.test(line)) jar.delete(name);
        else jar.set(name, pair!.slice(eq + 1).trim());
      }
      return res;
    },
    async fetch(url: string, init: RequestInit = {}) {
      const headers = new Headers(init.headers);
      if (jar.size > 0) headers.set("cookie", this.header());
      return this.take(await fetch(url, { ...init, headers, redirect: "manual" }));
    },
    jar,
  };
}

export type CookieJar = ReturnType<typeof cookieJar>;
