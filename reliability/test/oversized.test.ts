import { randomBytes } from "node:crypto";
import { createMemoryStore, KvError } from "@kvsession/kv";
import {
  createSealedSessions,
  createSessions,
  SessionCookieTooLargeError,
  SessionDataError,
} from "@kvsession/session";
import { countingStore } from "@kvsession/test-helpers";
import { afterAll, describe, expect, it } from "vitest";
import { embeddedDrivers, realDrivers } from "../src/drivers.js";
import { cookieFrom, httpClient, serve } from "../src/http-client.js";
import { record } from "../src/record.js";
import { SECRET, sessionApp } from "../src/session-app.js";

/**
 * Issue 7, "Oversized values and cookies": every limit answers with a typed error before
 * anything is written, the previous value survives, and oversized Cookie headers cost bounded
 * work. The figures feed the limits table of docs/security.md.
 */
const drivers = await realDrivers();
const SMALL_LIMIT = 64 * 1024;
const hex = (u: Uint8Array | undefined) => (u === undefined ? undefined : Buffer.from(u).toString("hex"));
const old = new TextEncoder().encode("previous value");
const limits: Record<string, unknown> = {};
const figures: Record<string, unknown> = {};
afterAll(() => record("oversized", { what: "oversized values, sessions and cookies", limits, ...figures }));

async function refusedKeepsOld(
  store: import("@kvsession/kv").KvStore,
  big: Uint8Array,
): Promise<Record<string, string>> {
  await store.set("k", old);
  const codes: Record<string, string> = {};
  const attempts: Record<string, () => Promise<unknown>> = {
    set: () => store.set("k", big),
    setMany: () => store.setMany([{ key: "k", value: big }]),
    setIfAbsent: () => store.setIfAbsent("fresh", big),
    ...(store.capabilities.compareAndSet
      ? { compareAndSet: async () => store.compareAndSet("k", (await store.getVersioned("k")).version, big) }
      : {}),
  };
  for (const [op, attempt] of Object.entries(attempts)) {
    if (op === "setIfAbsent" && !store.capabilities.setIfAbsent) continue;
    const err = await attempt().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, op).toBeInstanceOf(KvError);
    codes[op] = (err as KvError).code;
    expect(codes[op], op).toBe("KV_VALUE_TOO_LARGE");
    expect(hex(await store.get("k")), op).toBe(hex(old));
    expect(await store.has("fresh"), op).toBe(false);
  }
  return codes;
}

describe.each(drivers)("oversized values on $name", (d) => {
  it("one byte over the default maxValueBytes: KvValueTooLargeError, the previous value intact", async () => {
    const opened = await d.open();
    try {
      const limit = opened.store.capabilities.maxValueBytes;
      // Zero-filled and never touched: the pages are not committed, so even 512 MiB costs no memory.
      const codes = await refusedKeepsOld(opened.store, new Uint8Array(limit + 1));
      limits[d.name] = {
        maxValueBytes: limit,
        maxKeyBytes: opened.store.capabilities.maxKeyBytes,
        configurable: d.configurableLimit,
        overLimit: codes,
      };
    } finally {
      await opened.dispose();
    }
  });
});

describe.each(drivers.filter((d) => d.configurableLimit))("a configured limit on $name", (d) => {
  it(`a configured limit of ${SMALL_LIMIT} bytes: exactly the limit fits, one byte more is refused`, async () => {
    const opened = await d.open({ maxValueBytes: SMALL_LIMIT });
    try {
      expect(opened.store.capabilities.maxValueBytes).toBe(SMALL_LIMIT);
      const fits = randomBytes(SMALL_LIMIT);
      await opened.store.set("edge", fits);
      expect(hex(await opened.store.get("edge"))).toBe(hex(fits));
      await refusedKeepsOld(opened.store, randomBytes(SMALL_LIMIT + 1));
    } finally {
      await opened.dispose();
    }
  });
});

describe("a session too large for its store", () => {
  it("over HTTP: the write is refused as SESSION_DATA (500, not a 503 to retry), the stored session intact", async () => {
    const opened = await embeddedDrivers.find((d) => d.name === "sqlite")!.open({ maxValueBytes: 16 * 1024 });
    const { app } = sessionApp(opened.store);
    const served = await serve(app);
    const client = httpClient(served, 4);
    try {
      const created = await client.send("POST", "/set/base/1");
      const cookie = cookieFrom(created) as string;
      // The app puts 20 KB in the session: the record no longer fits in the store's 16 KiB.
      const big = await client.send("POST", `/fill/big/${20 * 1024}`, { cookie });
      const after = await client.send("GET", "/data", { cookie });
      figures.sessionTooLargeForStore = {
        store: "sqlite, maxValueBytes 16 KiB",
        status: big.status,
        body: big.body,
      };
      expect(big.status).toBe(500);
      expect(big.body).toBe("SESSION_DATA");
      expect(cookieFrom(big)).toBeUndefined();
      expect(JSON.parse(after.body)).toEqual({ exists: true, data: { base: 1 } });
    } finally {
      client.close();
      await served.close();
      await opened.dispose();
    }
  });

  it("in the core: SessionDataError with the KvValueTooLargeError as cause", async () => {
    const opened = await embeddedDrivers.find((d) => d.name === "fs")!.open({ maxValueBytes: 4096 });
    try {
      const sessions = createSessions({ store: opened.store, secrets: [SECRET] });
      const s = sessions.open();
      s.set("blob", "x".repeat(5000));
      const err = await s.commit().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SessionDataError);
      expect(((err as Error).cause as KvError).code).toBe("KV_VALUE_TOO_LARGE");
    } finally {
      await opened.dispose();
    }
  });
});

describe("a sealed session too large for the cookie budget", () => {
  /** Largest incompressible string value (base64 of random bytes) that still seals, by bisection. */
  async function budget(options: { chunking?: boolean; maxChunks?: number }): Promise<number> {
    const sealed = createSealedSessions({ secrets: [SECRET], ...options });
    const fits = async (n: number) => {
      const s = sealed.open({ secure: true });
      s.set("v", randomBytes(n).toString("base64url").slice(0, n));
      return s.commit().then(
        () => true,
        (e: unknown) => {
          expect(e).toBeInstanceOf(SessionCookieTooLargeError);
          return false;
        },
      );
    };
    let lo = 1;
    let hi = 64 * 1024;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (await fits(mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  it("SessionCookieTooLargeError before any header; the cookie from before still opens", async () => {
    const sealed = createSealedSessions({ secrets: [SECRET], chunking: false });
    const first = sealed.open({ secure: true });
    first.set("small", 1);
    const cookie = (await first.commit()).setCookie[0]!.split(";")[0]!;
    const next = sealed.open({ secure: true, cookieHeader: cookie });
    next.set("blob", randomBytes(6000).toString("base64"));
    await expect(next.commit()).rejects.toBeInstanceOf(SessionCookieTooLargeError);
    expect(await sealed.open({ secure: true, cookieHeader: cookie }).all()).toEqual({ small: 1 });

    const single = await budget({ chunking: false });
    const fourChunks = await budget({});
    figures.sealedBudget = {
      incompressibleCharsOneCookie: single,
      incompressibleCharsFourChunks: fourChunks,
      attributes: "__Host-sid, Path=/, HttpOnly, Secure, SameSite=Lax",
    };
    expect(single).toBeGreaterThan(2500);
    expect(single).toBeLessThan(4096);
    expect(fourChunks).toBeGreaterThan(3 * single);
    expect(fourChunks).toBeLessThan(4 * 4096);
  });
});

describe("oversized Cookie headers", () => {
  const { store, calls } = countingStore(createMemoryStore());
  const sessions = createSessions({ store, secrets: [SECRET] });
  const live = async (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const s = sessions.open();
      s.set("i", i);
      out.push((await s.commit()).setCookie[0]!.split(";")[0]!);
    }
    return out;
  };
  const visit = async (cookieHeader: string) => {
    calls.reset();
    const s = sessions.open({ cookieHeader });
    const data = await s.all();
    const exists = await s.exists();
    await s.commit();
    return { data, exists, reads: calls.total() };
  };

  it("1000 validly signed cookies of live sessions: at most 4 store reads, and no session (fail closed)", async () => {
    const cookies = await live(1000);
    const many = await visit(cookies.join("; "));
    expect(many).toEqual({ data: {}, exists: false, reads: 4 });
    // The one valid cookie behind 1000 junk pairs, or behind 64 KiB of header, is never looked at.
    const junk = Array.from({ length: 1000 }, (_, i) => `j${i}=${i}`).join("; ");
    const behindJunk = await visit(`${junk}; ${cookies[0]}`);
    expect(behindJunk).toEqual({ data: {}, exists: false, reads: 0 });
    const behind64k = await visit(`${"a".repeat(64 * 1024)}; ${cookies[0]}`);
    expect(behind64k).toEqual({ data: {}, exists: false, reads: 0 });
    const oneMegabyte = await visit(`sid=${"x".repeat(1024 * 1024)}; ${cookies[0]}`);
    expect(oneMegabyte).toEqual({ data: {}, exists: false, reads: 0 });
    // Control: the same cookie alone is the live session.
    expect(await visit(cookies[0]!)).toEqual({ data: { i: 0 }, exists: true, reads: 1 });
    figures.oversizedHeaders = {
      thousandSignedCookies: { storeReads: many.reads, session: "none" },
      validCookieBehind1000Pairs: { storeReads: 0, session: "none" },
      validCookieBehind64KiB: { storeReads: 0, session: "none" },
      oneMegabyteCookie: { storeReads: 0, session: "none" },
    };
  });

  it("over HTTP: 1000 cookies get 200 and an empty session; a 64 KiB header gets 431 from Node; the app keeps serving", async () => {
    const opened = await embeddedDrivers[0]!.open();
    const { app } = sessionApp(opened.store);
    const served = await serve(app);
    const client = httpClient(served, 4);
    try {
      const thousand = Array.from({ length: 1000 }, (_, i) => `c${i}=${i}`).join("; ");
      const a = await client.send("GET", "/data", { cookie: thousand });
      expect(a.status).toBe(200);
      expect(JSON.parse(a.body)).toEqual({ exists: false, data: {} });
      const b = await client.send("GET", "/data", { cookie: "a".repeat(64 * 1024) }).catch((e: Error) => e);
      const bStatus = b instanceof Error ? b.message : b.status;
      expect(bStatus).toBe(431);
      expect((await client.send("GET", "/data")).status).toBe(200);
      figures.oversizedHeadersHttp = {
        thousandCookies: { bytes: thousand.length, status: a.status },
        header64KiB: { status: bStatus },
      };
    } finally {
      client.close();
      await served.close();
      await opened.dispose();
    }
  });
});
