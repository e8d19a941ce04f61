import { createMemoryStore, type KvStore } from "@kvsession/kv";
import { createStore, delegateDriver, type KvDriver } from "@kvsession/kv/driver";

export const SECRET = "0123456789abcdef0123456789abcdef-test-secret";

/** A real memory store whose driver calls are counted (instrumentation, not a mock). */
export function countingStore(): { store: KvStore; calls: () => number } {
  let n = 0;
  const inner = delegateDriver(createMemoryStore(), "counting");
  const driver = { ...inner } as Record<string, unknown>;
  for (const [k, v] of Object.entries(inner)) {
    if (typeof v !== "function" || k === "close") continue;
    driver[k] = (...args: unknown[]) => {
      n++;
      return (v as (...a: unknown[]) => unknown)(...args);
    };
  }
  return { store: createStore(driver as unknown as KvDriver), calls: () => n };
}

/** A browser's cookie jar, reduced to what these tests need: name=value pairs, cleared by Max-Age=0. */
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
