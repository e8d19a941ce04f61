import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createMemoryStore, json } from "@kvsession/kv";
import { createSessions, hashId, parseCookieHeader, serializeCookie } from "@kvsession/session";
import type { BenchCase, BenchSuite } from "../types.js";

const SESSIONS = 1_000;
const SECRET = "bench-secret-that-is-long-enough-for-the-check-0123456789";
type Data = { count: number; user: string; cart: string[] };
const initial: Data = { count: 0, user: "ada", cart: ["apple", "pear", "plum"] };

/** The real core on MemoryStore: each op is one request of one of SESSIONS browsers. */
function ours(variant: string, write: boolean): BenchCase {
  return {
    name: "@kvsession/session on MemoryStore",
    role: "ours",
    variant,
    async create() {
      const store = createMemoryStore();
      const sessions = createSessions<Data>({ store, secrets: [SECRET], touchIntervalMs: 60_000 });
      const headers: string[] = [];
      for (let i = 0; i < SESSIONS; i++) {
        const s = sessions.open({ secure: true });
        for (const [k, v] of Object.entries(initial)) s.set(k as keyof Data, v as never);
        const out = await s.commit();
        headers.push(`theme=dark; ${out.setCookie[0]!.split(";")[0]}`);
      }
      return {
        async op(i) {
          const s = sessions.open({ cookieHeader: headers[i % SESSIONS], secure: true });
          const n = (await s.get("count")) ?? 0;
          if (write) s.set("count", n + 1);
          return s.commit();
        },
        close: () => store.close(),
      };
    },
  };
}

/**
 * The limit: the same work written by hand on a plain Map, with no validation,
 * no concurrency control, no timeouts: split the cookie, verify the HMAC, hash
 * the ID, JSON-decode, change, JSON-encode. Like the core, it remembers the
 * signature and store key of every ID it has verified, so a returning cookie
 * costs one constant-time comparison instead of an HMAC and a SHA-256.
 */
function limit(variant: string, write: boolean): BenchCase {
  return {
    name: "hand-written cycle on a Map",
    role: "limit",
    variant,
    async create() {
      const key = Buffer.from(SECRET);
      const map = new Map<string, string>();
      const cookies: string[] = [];
      const verified = new Map<string, { sig: Buffer; handle: string }>();
      for (let i = 0; i < SESSIONS; i++) {
        const id = randomBytes(32).toString("base64url");
        map.set(createHash("sha256").update(id).digest("base64url"), JSON.stringify({ data: initial }));
        cookies.push(`${id}.${createHmac("sha256", key).update(id).digest("base64url")}`);
      }
      return {
        async op(i) {
          const value = cookies[i % SESSIONS]!;
          const dot = value.indexOf(".");
          const id = value.slice(0, dot);
          const sig = Buffer.from(value.slice(dot + 1), "base64url");
          let known = verified.get(id);
          if (known === undefined) {
            const mac = createHmac("sha256", key).update(id).digest();
            if (!timingSafeEqual(mac, sig)) throw new Error("bad signature");
            known = { sig: mac, handle: createHash("sha256").update(id).digest("base64url") };
            verified.set(id, known);
          } else if (!timingSafeEqual(known.sig, sig)) throw new Error("bad signature");
          const rec = JSON.parse(map.get(known.handle)!) as { data: Data };
          if (!write) return rec.data.count;
          rec.data.count++;
          map.set(known.handle, JSON.stringify(rec));
          return rec.data.count;
        },
        close: async () => map.clear(),
      };
    },
  };
}

/** One piece of the cycle alone, to show where the time goes (µs/op = 1e6 / ops/s). */
function piece(name: string, setup: () => (i: number) => unknown): BenchCase {
  return {
    name,
    role: "ours",
    variant: `breakdown: ${name}`,
    async create() {
      const run = setup();
      return { op: async (i) => run(i), close: async () => {} };
    },
  };
}

const id = randomBytes(32).toString("base64url");
const key = Buffer.from(SECRET);
const signed = `${id}.${createHmac("sha256", key).update(id).digest("base64url")}`;
const record = { data: initial, createdAt: Date.now(), lastSeenAt: Date.now() };
const codec = json<unknown>();

export default {
  title:
    "Session core: load → change → commit on MemoryStore vs the same crypto by hand on a Map (the limit)",
  inFlight: [1, 64],
  ops: 100_000,
  targets: { limit: 0.5 },
  notes: [
    "Each op is one request of one of 1,000 live sessions: parse the Cookie header, verify the HMAC-SHA-256 signature,",
    "hash the ID (the store key), read the record (getVersioned), decode it (JSON codec with the prototype-pollution",
    "check), and for the write variant apply the patch and compare-and-set the new record. The limit does the same",
    "crypto and JSON by hand on a plain Map, without validation, expiry checks or concurrency control; like the core",
    "it remembers the signature and store key of each ID it verified, so a returning cookie costs it",
    "one constant-time comparison too. The breakdown rows time one piece each (1e6 / ops/s = µs).",
  ].join(" "),
  cases: [
    ours("request that changes one key", true),
    limit("request that changes one key", true),
    ours("read-only request", false),
    limit("read-only request", false),
    piece("parse Cookie header", () => () => parseCookieHeader(`theme=dark; __Host-sid=${signed}`)),
    piece("verify HMAC signature", () => () => {
      const mac = createHmac("sha256", key).update(id).digest();
      return timingSafeEqual(mac, Buffer.from(signed.slice(44), "base64url"));
    }),
    piece("hash ID (SHA-256)", () => () => hashId(id)),
    piece("JSON codec decode + encode of the record", () => {
      const bytes = codec.encode(record);
      return () => codec.encode(codec.decode(bytes));
    }),
    piece(
      "serialise Set-Cookie",
      () => () =>
        serializeCookie("__Host-sid", signed, { path: "/", httpOnly: true, secure: true, sameSite: "Lax" }),
    ),
  ],
} satisfies BenchSuite;
