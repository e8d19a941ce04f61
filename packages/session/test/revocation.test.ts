import { createMemoryStore, json, type KvStore } from "@kvsession/kv";
import { wrapStore } from "@kvsession/test-helpers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { deriveKeys, secretBytes } from "../src/crypto.js";
import {
  createSealedSessions,
  createSessions,
  hashId,
  SessionConflictError,
  type Sessions,
} from "../src/index.js";
import { createUserIndex } from "../src/user-index.js";
import { createJar, type Jar, request, SECRET, SECRET_2 } from "./helpers.js";

const T0 = Date.UTC(2030, 0, 1);
const MIN = 60_000;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

const handleIn = (jar: Jar) => hashId(jar.jar.get("__Host-sid")!.split(".")[0]!);
const userOf = async (sessions: Sessions, jar: Jar) =>
  (await request(sessions, jar, (s) => s.userId())).value;

/** Every key in the store with its value as text: what a stolen dump shows. */
async function dump(store: KvStore): Promise<string> {
  const out: string[] = [];
  for await (const e of store.entries()) out.push(`${e.key}=${Buffer.from(e.value).toString("latin1")}`);
  return out.join("\n");
}

describe("per-user index and revocation (server-side)", () => {
  let store: KvStore;
  let sessions: Sessions;
  beforeEach(() => {
    store = createMemoryStore();
    // The default timeouts: 30 min idle, 12 h absolute.
    sessions = createSessions({ store, secrets: [SECRET] });
  });

  it("a session active for longer than the idle timeout stays listed and is revoked", async () => {
    const jar = createJar();
    await request(sessions, jar, (s) => s.bindUser("ada"));
    // Active every 10 minutes for an hour: the record's deadline moves, so must the index.
    for (let m = 10; m <= 60; m += 10) {
      vi.setSystemTime(T0 + m * MIN);
      expect(await userOf(sessions, jar)).toBe("ada");
    }
    expect((await sessions.listUserSessions("ada")).map((s) => s.handle)).toEqual([handleIn(jar)]);
    expect(await sessions.revokeUser("ada")).toBe(1);
    expect(await userOf(sessions, jar)).toBeUndefined();
  });

  it("revokeSession works for a long-lived session", async () => {
    const jar = createJar();
    await request(sessions, jar, (s) => s.bindUser("ada"));
    for (let m = 20; m <= 80; m += 20) {
      vi.setSystemTime(T0 + m * MIN);
      await userOf(sessions, jar);
    }
    expect(await sessions.revokeSession("ada", handleIn(jar))).toBe(true);
    expect(await userOf(sessions, jar)).toBeUndefined();
  });

  it("a login racing revokeUser does not survive it", async () => {
    let during: (() => Promise<unknown>) | undefined;
    // The moment between the index entry and the record: where the revocation used to slip through.
    const racing = wrapStore(store, (method, call) => {
      const run = during;
      if (method !== "setIfAbsent" || run === undefined) return call();
      during = undefined;
      return run().then(call);
    });
    const raced = createSessions({ store: racing, secrets: [SECRET] });
    const jar = createJar();
    during = () => raced.revokeUser("ada");
    const login = request(raced, jar, (s) => s.bindUser("ada"));
    await expect(login).rejects.toThrow(SessionConflictError);
    expect(await raced.listUserSessions("ada")).toEqual([]);
    // Nothing of that login is left in the store to be loaded later.
    expect(await dump(store.withPrefix("sess:"))).toBe("");
    // Logins after the revocation work.
    vi.setSystemTime(T0 + 5);
    const after = createJar();
    await request(raced, after, (s) => s.bindUser("ada"));
    expect(await userOf(raced, after)).toBe("ada");
  });

  it("revokeUser ends every session however many there are, and listing returns them all", async () => {
    // Filed the way logins file them, without 10,050 logins' worth of time.
    const index = createUserIndex(
      store.withPrefix("sess-user:"),
      deriveKeys(secretBytes([SECRET]), "user-index"),
    );
    const records = store.withPrefix("sess:");
    const n = 10_050;
    const codec = json();
    for (let i = 0; i < n; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, n - i) }, (_, j) => hashId(`id-${i + j}`));
      await records.setMany(
        batch.map((h) => ({
          key: h,
          value: codec.encode({
            data: {},
            createdAt: T0,
            lastSeenAt: T0,
            userId: "ada",
            ix: index.generation,
          }),
          expiresAt: T0 + 60 * MIN,
        })),
      );
      for (const h of batch) await index.put("ada", h, { createdAt: T0 }, T0 + 60 * MIN);
    }
    expect((await sessions.listUserSessions("ada")).length).toBe(n);
    expect(await sessions.revokeUser("ada")).toBe(n);
    expect(await dump(records)).toBe("");
    expect(await sessions.listUserSessions("ada")).toEqual([]);
  });

  it("caps a user's live sessions: a login beyond the cap ends the least recently used", async () => {
    const capped = createSessions({ store, secrets: [SECRET], maxSessionsPerUser: 3 });
    const jars = Array.from({ length: 5 }, createJar);
    for (const [i, jar] of jars.entries()) {
      vi.setSystemTime(T0 + i * MIN);
      await request(capped, jar, (s) => s.bindUser("ada"));
    }
    // The first login is used again before the last two: it is not the least recently used.
    const live = await Promise.all(jars.map((j) => userOf(capped, j)));
    expect(live.filter((u) => u === "ada").length).toBe(3);
    expect(live.slice(2)).toEqual(["ada", "ada", "ada"]);
    expect((await capped.listUserSessions("ada")).length).toBe(3);
    expect(() => createSessions({ store, secrets: [SECRET], maxSessionsPerUser: 0 })).toThrow(
      /maxSessionsPerUser/,
    );
  });

  it("a store dump holds neither the user ID nor its plain hash", async () => {
    await request(sessions, createJar(), (s) => s.bindUser("ada@example.com"));
    await sessions.revokeUser("bob@example.com");
    const text = await dump(store.withPrefix("sess-user:"));
    for (const who of ["ada@example.com", "bob@example.com"]) {
      expect(text).not.toContain(who);
      expect(text).not.toContain(hashId(who));
    }
  });

  it("an index written by an earlier version (plain hash keys) is still listed, revoked, and moved on the next write", async () => {
    const jar = createJar();
    await request(sessions, jar, (s) => s.bindUser("ada"));
    const h = handleIn(jar);
    // Rewrite the store as the earlier version left it: entry under sha256(userId), no `ix` in the record.
    const users = store.withPrefix("sess-user:");
    for await (const k of users.keys()) await users.delete(k);
    await users.set(`${hashId("ada")}:${h}`, json().encode({ createdAt: T0 }), { ttl: 30 * MIN });
    const rec = JSON.parse(Buffer.from((await store.withPrefix("sess:").get(h))!).toString());
    delete rec.ix;
    await store.withPrefix("sess:").set(h, json().encode(rec), { ttl: 30 * MIN });
    expect((await sessions.listUserSessions("ada")).map((s) => s.handle)).toEqual([h]);
    // The next write (the last-seen refresh) files it under the keyed name.
    vi.setSystemTime(T0 + 5 * MIN);
    await userOf(sessions, jar);
    const keys: string[] = [];
    for await (const k of users.keys()) keys.push(k);
    expect(keys.some((k) => k.startsWith(hashId("ada")))).toBe(false);
    expect((await sessions.listUserSessions("ada")).map((s) => s.handle)).toEqual([h]);
    expect(await sessions.revokeUser("ada")).toBe(1);
    expect(await userOf(sessions, jar)).toBeUndefined();
  });

  it("re-signs a cookie signed with an older secret on use, keeping the ID, so the old secret can go", async () => {
    const jar = createJar();
    await request(sessions, jar, (s) => s.bindUser("ada"));
    const before = jar.jar.get("__Host-sid")!;
    const rotating = createSessions({ store, secrets: [SECRET_2, SECRET] });
    const { result } = await request(rotating, jar, (s) => s.userId());
    const after = jar.jar.get("__Host-sid")!;
    expect(result.setCookie.length).toBe(1);
    expect(after.split(".")[0]).toBe(before.split(".")[0]);
    expect(after).not.toBe(before);
    // The next request with the new cookie needs no re-signing.
    expect((await request(rotating, jar, (s) => s.userId())).result.setCookie).toEqual([]);
    // The old secret is dropped: the session goes on, listed and revocable.
    const rotated = createSessions({ store, secrets: [SECRET_2] });
    expect(await userOf(rotated, jar)).toBe("ada");
    vi.setSystemTime(T0 + 5 * MIN);
    expect(await userOf(rotated, jar)).toBe("ada");
    expect((await rotated.listUserSessions("ada")).length).toBe(1);
    expect(await rotated.revokeUser("ada")).toBe(1);
    expect(await userOf(rotated, jar)).toBeUndefined();
  });
});

describe("sealed mode revocation", () => {
  it("a request in flight during revokeUser does not get a working cookie", async () => {
    const revocationStore = createMemoryStore();
    const sealed = createSealedSessions({ secrets: [SECRET], revocationStore });
    const jar = createJar();
    await request(sealed, jar, (s) => s.bindUser("ada"));
    vi.setSystemTime(T0 + 5 * MIN);
    const inFlight = sealed.open({ cookieHeader: jar.header(), secure: true });
    expect(await inFlight.userId()).toBe("ada");
    await sealed.revokeUser("ada");
    // The handler finishes a moment after the revocation.
    vi.setSystemTime(T0 + 5 * MIN + 50);
    inFlight.set("n", 1);
    jar.apply(await inFlight.commit());
    expect(await userOf(sealed as unknown as Sessions, jar)).toBeUndefined();
  });

  it("keeps the not-before time under a keyed name, and still reads the earlier plain-hash one", async () => {
    const revocationStore = createMemoryStore();
    const sealed = createSealedSessions({ secrets: [SECRET], revocationStore });
    await sealed.revokeUser("ada@example.com");
    const text = await dump(revocationStore);
    expect(text).not.toContain(hashId("ada@example.com"));
    expect(text).not.toContain("ada@example.com");
    // A not-before time written by an earlier version.
    const jar = createJar();
    vi.setSystemTime(T0 + MIN);
    await request(sealed, jar, (s) => s.bindUser("bob"));
    await revocationStore.set(`sess-nbf:${hashId("bob")}`, Buffer.from(String(T0 + 2 * MIN)));
    vi.setSystemTime(T0 + 3 * MIN);
    expect(await userOf(sealed as unknown as Sessions, jar)).toBeUndefined();
  });
});
