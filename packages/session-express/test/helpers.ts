import type { AddressInfo } from "node:net";
import type { KvStore } from "@kvsession/kv";
import type express from "express";

export const SECRET = "a-test-secret-that-is-long-enough-0123456789";

const servers: Array<{ close(): void; closeAllConnections(): void }> = [];

export function closeServers(): void {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
}

/** Listens on a loopback port and returns a tiny cookie-jar client for it. */
export async function serve(app: express.Express) {
  const server = app.listen(0, "127.0.0.1");
  servers.push(server);
  await new Promise((r) => server.once("listening", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, client: () => client(base) };
}

export interface Reply {
  status: number;
  text: string;
  setCookie: string[];
  headers: Headers;
}

/** One browser: keeps the last session cookie it was given, like a cookie jar would. */
export function client(base: string) {
  let cookie: string | undefined;
  return {
    get cookie() {
      return cookie;
    },
    set cookie(c: string | undefined) {
      cookie = c;
    },
    async request(path: string, init: RequestInit = {}): Promise<Reply> {
      const headers = new Headers(init.headers);
      if (cookie !== undefined && !headers.has("cookie")) headers.set("cookie", cookie);
      const res = await fetch(base + path, { ...init, headers, redirect: "manual" });
      const setCookie = res.headers.getSetCookie();
      for (const c of setCookie) {
        const pair = c.split(";")[0]!;
        cookie = /max-age=0/i.test(c) ? undefined : pair;
      }
      return { status: res.status, text: await res.text(), setCookie, headers: res.headers };
    },
  };
}

/** Counts every call that reaches the store (through prefix views too): a spy on a real store, not a mock. */
export function countingStore(inner: KvStore): { store: KvStore; calls: string[] } {
  const calls: string[] = [];
  // The store object is frozen, so copy it rather than proxy it.
  const wrap = (s: KvStore): KvStore => {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(s)) {
      const v = (s as unknown as Record<string, unknown>)[key];
      if (typeof v !== "function") out[key] = v;
      else if (key === "withPrefix") out[key] = (p: string) => wrap(s.withPrefix(p));
      else
        out[key] = (...args: unknown[]) => {
          calls.push(key);
          return (v as (...a: unknown[]) => unknown).apply(s, args);
        };
    }
    return out as unknown as KvStore;
  };
  return { store: wrap(inner), calls };
}
