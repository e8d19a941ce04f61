/**
 * A minimal browser over fetch: one cookie jar, follows 303s to "/" by hand, reads the CSRF token
 * from the last page. `headers` go with every request (an X-Forwarded-For, say).
 */
export function browser(base: string, headers: Record<string, string> = {}) {
  let cookie: string | undefined;
  let html = "";
  let last: Response | undefined;
  const request = async (path: string, init: RequestInit = {}) => {
    const h = new Headers(init.headers);
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    if (cookie) h.set("cookie", cookie);
    const res = await fetch(base + path, { ...init, headers: h, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) cookie = /Max-Age=0/i.test(c) ? undefined : c.split(";")[0];
    last = res;
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
    /** The last response (after a 303, the page it led to). */
    get last(): Response {
      if (last === undefined) throw new Error("no request made yet");
      return last;
    },
    async open() {
      const res = await request("/");
      html = await res.text();
      return html;
    },
    csrf: () => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "",
    /** POSTs a form; on a 303 opens "/" as a browser would. Returns the POST's status. */
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
      // A plain-text refusal (403, 429) leaves the page, and its CSRF token, as they were.
      const body = await res.text();
      if (res.headers.get("content-type")?.startsWith("text/html")) html = body;
      return res.status;
    },
  };
  return self;
}
