import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { createApp } from "@kvsession/example-express-pin/src/app.js";
import { createMemoryStore } from "@kvsession/kv";
import {
  createSealedSessions,
  createSessions,
  parseCookieHeader,
  type SealedSessions,
  type Sessions,
} from "@kvsession/session";
import { countingStore, type StoreCalls } from "@kvsession/test-helpers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { embeddedDrivers, type OpenedStore, realDrivers } from "../src/drivers.js";
import { cookieFrom, httpClient, serve } from "../src/http-client.js";
import { sized } from "../src/mode.js";
import { record } from "../src/record.js";
import { SECRET, sessionApp } from "../src/session-app.js";

/**
 * Issue 7, "Hostile input": property-based fuzzing of what an attacker controls (the Cookie
 * header) at the core's public entry points and through the real Express example over HTTP.
 * Each property asserts three things: nothing throws out of the core, no forgery is accepted,
 * and nothing that fails verification ever reaches the store (a counting wrapper proves it).
 */
const drivers = await realDrivers();
const RUNS = sized(300, 5000);
const DRIVER_RUNS = sized(60, 600);
const HTTP_RUNS = sized(150, 2000);
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const NAME = "sid";
const figures: Record<string, unknown> = {};
let forgeriesAccepted = 0;
let storeCallsForUnverified = 0;
let thrownOutOfCore = 0;
afterAll(() =>
  record("hostile-input", {
    what: "fast-check over Cookie headers: parser, signature check, unsealing, chunk reassembly, Express over HTTP",
    runsPerProperty: RUNS,
    httpRuns: HTTP_RUNS,
    forgedCookieRunsPerDriver: DRIVER_RUNS,
    forgeriesAccepted,
    storeCallsForUnverifiedIds: storeCallsForUnverified,
    thrownOutOfCore,
    ...figures,
  }),
);

const b64 = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...B64URL), minLength: min, maxLength: max });

/** Small edits of a valid cookie value: what an attacker tries first. */
const mutation = (valid: string) =>
  fc.oneof(
    fc
      .record({ at: fc.nat(valid.length - 1), c: fc.constantFrom(...`${B64URL}.~=" `) })
      .map(({ at, c }) => valid.slice(0, at) + c + valid.slice(at + 1)),
    fc
      .record({ at: fc.nat(valid.length), s: b64(1, 3) })
      .map(({ at, s }) => valid.slice(0, at) + s + valid.slice(at)),
    fc
      .record({ at: fc.nat(valid.length - 1), n: fc.integer({ min: 1, max: 4 }) })
      .map(({ at, n }) => valid.slice(0, at) + valid.slice(at + n)),
    fc.record({ a: fc.nat(valid.length - 1), b: fc.nat(valid.length - 1) }).map(({ a, b }) => {
      const x = [...valid];
      [x[a], x[b]] = [x[b]!, x[a]!];
      return x.join("");
    }),
    fc.nat(valid.length - 1).map((at) => {
      const c = valid[at]!;
      const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
      return valid.slice(0, at) + flipped + valid.slice(at + 1);
    }),
    fc.constant(valid),
  );

/** Cookie headers of every shape: arbitrary text, cookie-like pairs around our name, non-strings. */
const anyHeader = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  fc
    .array(
      fc.record({
        name: fc.constantFrom(NAME, ` ${NAME}`, `${NAME}.0`, `${NAME}.1`, "SID", "other", ""),
        value: fc.oneof(
          fc.string({ unit: "binary", maxLength: 120 }),
          fc.tuple(b64(43, 43), b64(43, 43)).map(([a, b]) => `${a}.${b}`),
          fc.tuple(fc.integer({ min: 0, max: 99 }), b64(0, 200)).map(([n, s]) => `${n}~${s}`),
        ),
        sep: fc.constantFrom("; ", ";", ",", " ; ", ";;"),
      }),
      { maxLength: 8 },
    )
    .map((pairs) => pairs.map((p) => `${p.name}=${p.value}${p.sep}`).join("")),
  fc.array(fc.string({ maxLength: 60 }), { maxLength: 4 }),
  fc.anything(),
);

/** Runs a request with an attacker's header through the core and reports what it saw. */
async function visit(
  sessions: Pick<Sessions, "open"> | Pick<SealedSessions, "open">,
  cookieHeader: unknown,
): Promise<{ exists: boolean; data: Record<string, unknown> }> {
  try {
    const s = sessions.open({ cookieHeader, secure: false });
    const data = (await s.all()) as Record<string, unknown>;
    await s.get("blob");
    const exists = await s.exists();
    await s.commit();
    return { exists, data };
  } catch (err) {
    thrownOutOfCore++;
    throw err;
  }
}

/** What must hold for a cookie that does not verify; tallied for the record first, so a failure shows in the figures too. */
function expectRefused(seen: { exists: boolean; data: unknown }, calls: StoreCalls): void {
  storeCallsForUnverified += calls.total();
  if (seen.exists) forgeriesAccepted++;
  expect(seen).toEqual({ exists: false, data: {} });
  expect(calls.total()).toBe(0);
}

describe("server-side sessions: cookie parser and signature check", () => {
  const { store, calls } = countingStore(createMemoryStore());
  const sessions = createSessions({ store, secrets: [SECRET] });
  let valid = "";
  let id = "";

  beforeAll(async () => {
    const s = sessions.open({ secure: false });
    s.set("who", "victim");
    const out = await s.commit();
    valid = out.setCookie[0]!.split(";")[0]!.slice(NAME.length + 1);
    id = valid.slice(0, 43);
    expect(valid).toHaveLength(87);
  });

  it("parseCookieHeader never throws and returns only RFC 6265 pairs, at most 256", () => {
    fc.assert(
      fc.property(anyHeader, (header) => {
        const pairs = parseCookieHeader(header);
        expect(pairs.length).toBeLessThanOrEqual(256);
        for (const p of pairs) {
          expect(p.name).toMatch(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/);
          expect(p.value).toMatch(/^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("arbitrary Cookie headers: no throw, no session, no store call", async () => {
    await fc.assert(
      fc.asyncProperty(anyHeader, async (header) => {
        calls.reset();
        const seen = await visit(sessions, header);
        expectRefused(seen, calls);
      }),
      { numRuns: RUNS },
    );
  });

  it("well-shaped IDs with forged signatures (random, or the victim's ID re-signed at random): refused before the store", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(b64(43, 43), fc.constant(id)), b64(43, 43), async (fakeId, sig) => {
        fc.pre(`${fakeId}.${sig}` !== valid);
        calls.reset();
        const seen = await visit(sessions, `${NAME}=${fakeId}.${sig}`);
        expectRefused(seen, calls);
      }),
      { numRuns: RUNS },
    );
  });

  it("mutations of a valid cookie never verify; only the identical value reaches the store", async () => {
    await fc.assert(
      fc.asyncProperty(mutation(valid), fc.constantFrom("", "a=1; ", "sid=junk; "), async (m, before) => {
        calls.reset();
        const seen = await visit(sessions, `${before}${NAME}=${m}`);
        const same = parseCookieHeader(`${NAME}=${m}`)[0]?.value === valid;
        if (same) {
          expect(seen.data).toEqual({ who: "victim" });
          return;
        }
        expectRefused(seen, calls);
      }),
      { numRuns: RUNS },
    );
  });

  it("a write after a forged cookie creates a new session under a new ID (no fixation), with only a create reaching the store", async () => {
    await fc.assert(
      fc.asyncProperty(fc.tuple(b64(43, 43), b64(43, 43)), async ([fakeId, sig]) => {
        calls.reset();
        const s = sessions.open({ cookieHeader: `${NAME}=${fakeId}.${sig}`, secure: false });
        s.set("n", 1);
        const out = await s.commit();
        expect(out.outcome).toBe("created");
        const issued = out.setCookie[0]!.split(";")[0]!.slice(NAME.length + 1, NAME.length + 44);
        expect(issued).not.toBe(fakeId);
        expect([...calls.byMethod.keys()]).toEqual(["setIfAbsent"]);
      }),
      { numRuns: sized(50, 500) },
    );
  });
});

describe("sealed sessions: unsealing and chunk reassembly", () => {
  const { store, calls } = countingStore(createMemoryStore());
  // A revocation store makes every opened session of a bound user cost a read: forged ones must not.
  const sealed = createSealedSessions({ secrets: [SECRET], revocationStore: store });
  let single = "";
  let chunks: string[] = [];
  // Large enough for three chunk cookies (sealed payloads are not compressed by default).
  const blob = randomBytes(5000).toString("base64");

  beforeAll(async () => {
    const a = sealed.open({ secure: false });
    await a.bindUser("victim");
    a.set("who", "victim");
    single = (await a.commit()).setCookie[0]!.split(";")[0]!.slice(NAME.length + 1);
    const b = sealed.open({ secure: false });
    await b.bindUser("victim");
    b.set("blob", blob);
    const out = await b.commit();
    chunks = out.setCookie.map((l) => l.split(";")[0]!.split("=").slice(1).join("="));
    expect(out.setCookie.map((l) => l.split("=")[0])).toEqual(chunks.map((_, i) => `${NAME}.${i}`));
    expect(chunks.length).toBe(3);
  });

  it("arbitrary headers and arbitrary base64url blobs never open, never throw, never reach the revocation store", async () => {
    const blobs = fc
      .tuple(
        fc.constantFrom(0, 1, 2),
        fc.constantFrom(0, 1, 3),
        fc.uint8Array({ minLength: 0, maxLength: 400 }),
      )
      .map(([v, f, rest]) => Buffer.concat([Buffer.from([v, f]), rest]).toString("base64url"));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          anyHeader,
          blobs.map((b) => `${NAME}=${b}`),
        ),
        async (header) => {
          calls.reset();
          const seen = await visit(sealed, header);
          expectRefused(seen, calls);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("mutations of a valid sealed cookie never open; the identical one does", async () => {
    await fc.assert(
      fc.asyncProperty(mutation(single), async (m) => {
        calls.reset();
        const seen = await visit(sealed, `${NAME}=${m}`);
        if (parseCookieHeader(`${NAME}=${m}`)[0]?.value === single) {
          expect(seen.data).toEqual({ who: "victim" });
          return;
        }
        expectRefused(seen, calls);
      }),
      { numRuns: RUNS },
    );
  });

  it("chunk reassembly: any mix of names, counts, orders, duplicates and edits opens only the exact original set", async () => {
    const n = chunks.length;
    const part = fc.oneof(
      // An original chunk, under its own name or another one.
      fc.record({ i: fc.nat(n - 1), as: fc.integer({ min: 0, max: n + 1 }) }).map(({ i, as }) => ({
        name: `${NAME}.${as}`,
        value: chunks[i]!,
      })),
      fc.nat(n - 1).map((i) => ({ name: `${NAME}.${i}`, value: chunks[i]! })),
      // An edited chunk: another count in the head, or a mutation.
      fc
        .integer({ min: 0, max: 99 })
        .map((k) => ({ name: `${NAME}.0`, value: chunks[0]!.replace(/^\d+~/, `${k}~`) })),
      fc.nat(n - 1).chain((i) => mutation(chunks[i]!).map((value) => ({ name: `${NAME}.${i}`, value }))),
      // The chunks glued into the plain cookie.
      fc.constant({ name: NAME, value: chunks.join("").replace(/^\d+~/, "") }),
    );
    const headers = fc.oneof(
      fc.array(part, { minLength: 1, maxLength: n + 3 }),
      // Mostly-intact sets: every chunk once, plus a few extra parts, in any order.
      fc
        .array(part, { maxLength: 2 })
        .map((extra) => [...chunks.map((value, i) => ({ name: `${NAME}.${i}`, value })), ...extra]),
    );
    let opened = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(
        headers.chain((ps) => fc.shuffledSubarray(ps, { minLength: ps.length })),
        async (ps) => {
          const header = ps.map((p) => `${p.name}=${p.value}`).join("; ");
          const pairs = parseCookieHeader(header);
          const exact = chunks.every((c, i) => {
            const sent = pairs.filter((p) => p.name === `${NAME}.${i}`).map((p) => p.value);
            return sent.length === 1 && sent[0] === c;
          });
          calls.reset();
          const seen = await visit(sealed, header);
          if (exact) {
            opened++;
            expect(seen.data).toEqual({ blob });
            return;
          }
          refused++;
          expectRefused(seen, calls);
        },
      ),
      { numRuns: RUNS },
    );
    figures.chunkReassembly = { chunks: n, opened, refused };
    // Both branches ran: the property is not vacuous.
    expect(opened).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});

describe("the Express example over HTTP", () => {
  let opened: OpenedStore;
  let served: Awaited<ReturnType<typeof serve>>;
  let client: ReturnType<typeof httpClient>;
  const statuses: Record<string, number> = {};

  beforeAll(async () => {
    opened = await embeddedDrivers.find((d) => d.name === "sqlite")!.open();
    const { app } = createApp({ store: opened.store, secrets: [SECRET] });
    served = await serve(app);
    client = httpClient(served, 8);
  });
  afterAll(async () => {
    client.close();
    await served.close();
    await opened.dispose();
    figures.http = { app: "examples/express-pin on SQLite", statuses };
  });

  // What node:http lets a client put in a header value: tab, printable ASCII, and 0x80-0xFF.
  const headerText = fc.string({
    unit: fc.oneof(
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom("\t", ";", "=", '"', "sid=", "sid.0=", "3~"),
    ),
    maxLength: 400,
  });

  it("arbitrary Cookie headers on GET / and POST /login: 200 or 403, never a 5xx, no session adopted", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(headerText, fc.array(headerText, { minLength: 2, maxLength: 3 })),
        fc.constantFrom("GET /", "POST /login", "POST /logout"),
        async (cookie, route) => {
          const [method, path] = route.split(" ") as [string, string];
          const reply = await client.send(method, path, { cookie });
          statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
          expect(reply.status).toBe(method === "GET" ? 200 : 403);
          if (method === "GET") expect(reply.body).toContain("Not logged in.");
        },
      ),
      { numRuns: HTTP_RUNS },
    );
  });

  it("bytes node:http refuses (NUL, bare CR, obs-fold, 100 KB) get a 4xx from the server and it keeps serving", async () => {
    const raw = (head: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(served.port, "127.0.0.1");
        let out = "";
        socket.setTimeout(10_000, () => socket.destroy(new Error("no answer in 10 s")));
        socket.on("data", (d) => {
          out += d.toString("latin1");
        });
        socket.on("end", () => resolve(out));
        socket.on("close", () => resolve(out));
        socket.on("error", reject);
        socket.end(`GET / HTTP/1.1\r\nHost: x\r\n${head}\r\nConnection: close\r\n\r\n`, "latin1");
      });
    const cases = {
      nul: "Cookie: sid=a\0b",
      bareCr: "Cookie: sid=a\rb",
      obsFold: "Cookie: sid=a\r\n b",
      huge: `Cookie: ${"a=b; ".repeat(20_000)}`,
    };
    const seen: Record<string, number> = {};
    for (const [label, head] of Object.entries(cases)) {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(await raw(head))?.[1] ?? 0);
      seen[label] = status;
      expect(status, label).toBeGreaterThanOrEqual(400);
      expect(status, label).toBeLessThan(500);
    }
    expect((await client.send("GET", "/")).status).toBe(200);
    figures.httpRefusedByNode = seen;
  });
});

describe.each(drivers)("forged cookies over HTTP on $name", (d) => {
  it("forged and mutated session cookies: 200, an empty session, not one store call", async () => {
    const opened = await d.open();
    const { store, calls } = countingStore(opened.store);
    const { app } = sessionApp(store);
    const served = await serve(app);
    const client = httpClient(served, 8);
    try {
      const valid = cookieFrom(await client.send("POST", "/set/who/1")) as string;
      const value = valid.slice(NAME.length + 1);
      const forged = fc.oneof(
        fc.tuple(b64(43, 43), b64(43, 43)).map(([a, b]) => `${a}.${b}`),
        mutation(value).filter((m) => parseCookieHeader(`${NAME}=${m}`)[0]?.value !== value),
      );
      let replies = 0;
      await fc.assert(
        fc.asyncProperty(forged, async (v) => {
          calls.reset();
          const reply = await client.send("GET", "/data", { cookie: `${NAME}=${v}` });
          replies++;
          expect(reply.status).toBe(200);
          expectRefused(JSON.parse(reply.body) as { exists: boolean; data: unknown }, calls);
        }),
        { numRuns: DRIVER_RUNS },
      );
      // Control: the genuine cookie costs exactly one read and finds the session.
      calls.reset();
      expect(JSON.parse((await client.send("GET", "/data", { cookie: valid })).body)).toEqual({
        exists: true,
        data: { who: 1 },
      });
      expect(calls.total()).toBe(1);
      figures[`forgedOverHttp.${d.name}`] = { replies, storeCalls: 0, accepted: 0 };
    } finally {
      client.close();
      await served.close();
      await opened.dispose();
    }
  });
});
