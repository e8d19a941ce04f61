import { json, type KvStore } from "@kvsession/kv";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSealedSessions, createSessions, hashId, type Sessions } from "../src/index.js";
import { cookieValue, createJar, request, SECRET } from "./helpers.js";

type Data = { cart: string[]; theme: string; n: number };

const IDLE = 10 * 60_000;
const ABS = 60 * 60_000;
const TOUCH = 60_000;

/** The server-side lifecycle, run against every store given (memory, SQLite…). */
export function describeLifecycle(name: string, makeStore: () => Promise<KvStore> | KvStore): void {
  describe(`session lifecycle on ${name}`, () => {
    let store: KvStore;
    let sessions: Sessions<Data>;
    const T0 = Date.UTC(2030, 0, 1);

    beforeEach(async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(T0);
      store = await makeStore();
      sessions = createSessions<Data>({
        store,
        secrets: [SECRET],
        idleTimeoutMs: IDLE,
        absoluteTimeoutMs: ABS,
        touchIntervalMs: TOUCH,
      });
    });
    afterEach(async () => {
      vi.useRealTimers();
      await store.close();
    });

    const liveId = (jar: ReturnType<typeof createJar>) => jar.jar.get("__Host-sid")?.split(".")[0];

    it("a request that never touches the session does no store I/O and sends no cookie", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("theme", "dark"));
      await store.close(); // any store call from now on would throw KvClosedError
      const { result } = await request(sessions, jar, () => undefined);
      expect(result).toEqual({ setCookie: [], headers: {}, outcome: "untouched" });
    });

    it("creates a session on the first write and reads it back on the next request", async () => {
      const jar = createJar();
      const first = await request(sessions, jar, (s) => s.set("cart", ["apple"]));
      expect(first.result.outcome).toBe("created");
      expect(first.result.headers["cache-control"]).toBe("no-store");
      const line = first.result.setCookie[0]!;
      expect(line).toMatch(
        /^__Host-sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; Secure; SameSite=Lax$/,
      );
      const second = await request(sessions, jar, (s) => s.get("cart"));
      expect(second.value).toEqual(["apple"]);
      expect(second.result.setCookie).toEqual([]);
    });

    it("a read-only request inside the touch interval writes nothing", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 1));
      const before = await store
        .withPrefix("sess:")
        .getVersioned(hashId(liveId(jar)!))
        .catch(() => undefined);
      vi.setSystemTime(T0 + TOUCH - 1);
      const { result } = await request(sessions, jar, (s) => s.get("n"));
      expect(result.outcome).toBe("unchanged");
      const entry = await sessions.records.getEntry(hashId(liveId(jar)!));
      expect(JSON.parse(new TextDecoder().decode(entry!.value)).lastSeenAt).toBe(T0);
      if (before)
        expect((await sessions.records.getVersioned(hashId(liveId(jar)!))).version).toBe(before.version);
    });

    it("refreshes last-seen once the touch interval has passed, and on touch()", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 1));
      vi.setSystemTime(T0 + TOUCH);
      expect((await request(sessions, jar, (s) => s.get("n"))).result.outcome).toBe("saved");
      const lastSeen = async () =>
        JSON.parse(new TextDecoder().decode((await sessions.records.get(hashId(liveId(jar)!)))!)).lastSeenAt;
      expect(await lastSeen()).toBe(T0 + TOUCH);
      vi.setSystemTime(T0 + TOUCH + 5);
      await request(sessions, jar, async (s) => {
        await s.get("n");
        s.touch();
      });
      expect(await lastSeen()).toBe(T0 + TOUCH + 5);
    });

    it("stores the record under a hash of the ID, never the ID itself, with the documented layout", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("theme", "dark"));
      const id = liveId(jar)!;
      const keys: string[] = [];
      for await (const k of store.keys()) keys.push(k);
      expect(keys).toEqual([`sess:${hashId(id)}`]);
      const raw = new TextDecoder().decode((await store.get(keys[0]!))!);
      expect(raw).not.toContain(id);
      expect(JSON.parse(raw)).toEqual({ data: { theme: "dark" }, createdAt: T0, lastSeenAt: T0 });
    });

    it("sets the store TTL to whichever deadline comes first (idle, then absolute)", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 1));
      const h = hashId(liveId(jar)!);
      const ttlOf = async () => (await sessions.records.getEntry(h))?.expiresAt;
      const reported = await ttlOf();
      // Native-TTL drivers may not report deadlines; emulated ones must report ours.
      if (reported !== undefined) expect(reported).toBe(T0 + IDLE);
      vi.setSystemTime(T0 + ABS - IDLE / 2);
      // Keep the session alive until close to the absolute deadline.
      for (let at = T0 + IDLE / 2; at < T0 + ABS - IDLE / 2; at += IDLE / 2) {
        vi.setSystemTime(at);
        await request(sessions, jar, (s) => s.touch());
      }
      vi.setSystemTime(T0 + ABS - IDLE / 2);
      await request(sessions, jar, (s) => s.touch());
      const late = await ttlOf();
      if (late !== undefined) expect(late).toBe(T0 + ABS);
    });

    it("ends a session after the idle timeout (server-side) and starts a fresh one with a new ID", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 1));
      const oldId = liveId(jar);
      vi.setSystemTime(T0 + IDLE);
      const { value, result } = await request(sessions, jar, async (s) => {
        const v = await s.get("n");
        s.set("n", 2);
        return v;
      });
      expect(value).toBeUndefined();
      expect(result.outcome).toBe("created");
      expect(liveId(jar)).not.toBe(oldId);
    });

    it("ends a session at the absolute timeout even when it is active", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 1));
      for (let at = T0 + IDLE - 1; at < T0 + ABS; at += IDLE - 1) {
        vi.setSystemTime(at);
        expect((await request(sessions, jar, (s) => s.get("n"))).value).toBe(1);
      }
      vi.setSystemTime(T0 + ABS);
      expect((await request(sessions, jar, (s) => s.get("n"))).value).toBeUndefined();
    });

    it("delete() removes one key and keeps the others", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => {
        s.set("n", 1);
        s.set("theme", "dark");
      });
      await request(sessions, jar, (s) => s.delete("n"));
      expect((await request(sessions, jar, (s) => s.all())).value).toEqual({ theme: "dark" });
    });

    it("regenerate() issues a new ID, keeps the data, and the old ID stops working", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("cart", ["a"]));
      const oldCookie = jar.jar.get("__Host-sid")!;
      const { result } = await request(sessions, jar, (s) => s.regenerate());
      expect(cookieValue(result)).not.toBe(oldCookie);
      expect(result.headers["cache-control"]).toBe("no-store");
      expect((await request(sessions, jar, (s) => s.get("cart"))).value).toEqual(["a"]);
      const replay = createJar();
      replay.jar.set("__Host-sid", oldCookie);
      expect((await request(sessions, replay, (s) => s.get("cart"))).value).toBeUndefined();
      let n = 0;
      for await (const _ of sessions.records.keys()) n++;
      expect(n).toBeLessThanOrEqual(2); // the new record, and at most the old one's short-lived tombstone
    });

    it("regenerate({ keepData: false }) starts empty", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("cart", ["a"]));
      await request(sessions, jar, (s) => s.regenerate({ keepData: false }));
      expect((await request(sessions, jar, (s) => s.all())).value).toEqual({});
      expect(jar.jar.has("__Host-sid")).toBe(true);
    });

    it("destroy() deletes the record, clears the cookie and marks the response no-store", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 1));
      const h = hashId(liveId(jar)!);
      const { result } = await request(sessions, jar, (s) => s.destroy());
      expect(result.outcome).toBe("destroyed");
      expect(result.setCookie).toEqual([
        "__Host-sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax",
      ]);
      expect(result.headers["cache-control"]).toBe("no-store");
      expect(await sessions.records.get(h)).toBeUndefined();
      expect(jar.jar.size).toBe(0);
    });

    it("reload() drops pending changes and rereads the store", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 1));
      const other = createJar();
      other.jar.set("__Host-sid", jar.jar.get("__Host-sid")!);
      const s = sessions.open({ cookieHeader: jar.header(), secure: true });
      s.set("n", 5);
      await request(sessions, other, (o) => o.set("n", 2));
      await s.reload();
      expect(await s.get("n")).toBe(2);
      expect((await s.commit()).outcome).not.toBe("saved");
    });

    it("save() writes before the response so another request sees it", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 1));
      const s = sessions.open({ cookieHeader: jar.header(), secure: true });
      s.set("n", 7);
      await s.save();
      expect((await request(sessions, createJarFrom(jar), (o) => o.get("n"))).value).toBe(7);
      await s.commit();
    });

    it("flash messages are read once", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.flash("info", "saved!"));
      expect((await request(sessions, jar, (s) => s.flashes("info"))).value).toEqual(["saved!"]);
      expect((await request(sessions, jar, (s) => s.flashes("info"))).value).toEqual([]);
    });

    it("bindUser() regenerates and the per-user index lists, revokes all but current, and prunes", async () => {
      const laptop = createJar();
      const phone = createJar();
      await request(sessions, laptop, (s) => s.set("theme", "dark"));
      const anon = laptop.jar.get("__Host-sid");
      await request(sessions, laptop, (s) => s.bindUser("ada", { ua: "laptop" }));
      expect(laptop.jar.get("__Host-sid")).not.toBe(anon);
      vi.setSystemTime(T0 + 10);
      await request(sessions, phone, (s) => s.bindUser("ada", { ua: "phone" }));
      const current = sessions.open({ cookieHeader: laptop.header(), secure: true });
      const list = await sessions.listUserSessions("ada", { current });
      expect(list.map((l) => [l.meta, l.current])).toEqual([
        [{ ua: "phone" }, false],
        [{ ua: "laptop" }, true],
      ]);
      expect(list[1]!.handle).toBe(hashId(liveId(laptop)!));
      expect(await current.userId()).toBe("ada");
      expect(await sessions.revokeUser("ada", { except: current })).toBe(1);
      expect((await request(sessions, phone, (s) => s.userId())).value).toBeUndefined();
      expect((await request(sessions, laptop, (s) => s.userId())).value).toBe("ada");
      // A session destroyed directly leaves an index entry behind; listing prunes it.
      await store.withPrefix("sess:").delete(hashId(liveId(laptop)!));
      expect(await sessions.listUserSessions("ada")).toEqual([]);
      // What is left is the user's not-before time, written by revokeUser: no index entry.
      const left: string[] = [];
      for await (const k of store.withPrefix("sess-user:").keys()) left.push(k);
      expect(left.filter((k) => k.includes(":"))).toEqual([]);
      expect(left.join("")).not.toContain(hashId("ada").slice(0, 10));
    });

    it("revokeSession() ends one session by handle, only for its own user", async () => {
      const a = createJar();
      await request(sessions, a, (s) => s.bindUser("ada"));
      const h = hashId(liveId(a)!);
      expect(await sessions.revokeSession("bob", h)).toBe(false);
      expect((await request(sessions, a, (s) => s.userId())).value).toBe("ada");
      expect(await sessions.revokeSession("ada", h)).toBe(true);
      expect((await request(sessions, a, (s) => s.userId())).value).toBeUndefined();
    });

    it("revokeAll() ends every session", async () => {
      const a = createJar();
      const b = createJar();
      await request(sessions, a, (s) => s.bindUser("ada"));
      await request(sessions, b, (s) => s.set("n", 1));
      await sessions.revokeAll();
      expect((await request(sessions, a, (s) => s.exists())).value).toBe(false);
      expect((await request(sessions, b, (s) => s.exists())).value).toBe(false);
    });

    it("concurrent requests changing different keys both keep their change", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 0));
      const a = sessions.open({ cookieHeader: jar.header(), secure: true });
      const b = sessions.open({ cookieHeader: jar.header(), secure: true });
      await Promise.all([a.get("n"), b.get("n")]);
      a.set("theme", "dark");
      b.set("cart", ["x"]);
      expect((await Promise.all([a.commit(), b.commit()])).map((r) => r.outcome)).toEqual(["saved", "saved"]);
      expect((await request(sessions, jar, (s) => s.all())).value).toEqual({
        n: 0,
        theme: "dark",
        cart: ["x"],
      });
    });

    it("a slow save after destroy does not bring the session back", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("n", 0));
      const h = hashId(liveId(jar)!);
      const slow = sessions.open({ cookieHeader: jar.header(), secure: true });
      await slow.get("n");
      await request(sessions, createJarFrom(jar), (s) => s.destroy());
      slow.set("n", 1);
      expect((await slow.commit()).outcome).toBe("gone");
      expect(await sessions.records.get(h)).toBeUndefined();
    });

    it("sealed mode: the per-user not-before time lives in this store", async () => {
      const sealed = createSealedSessions<Data>({ secrets: [SECRET], revocationStore: store });
      const a = createJar();
      await request(sealed, a, (s) => s.bindUser("ada"));
      expect((await request(sealed, a, (s) => s.userId())).value).toBe("ada");
      vi.setSystemTime(T0 + 1);
      await sealed.revokeUser("ada");
      expect((await request(sealed, a, (s) => s.userId())).value).toBeUndefined();
    });

    it("stored data round-trips through the JSON codec only", async () => {
      const jar = createJar();
      await request(sessions, jar, (s) => s.set("cart", ["é", "😀"]));
      const raw = await store.get(`sess:${hashId(liveId(jar)!)}`);
      expect(json().decode(raw!)).toMatchObject({ data: { cart: ["é", "😀"] } });
    });
  });
}

function createJarFrom(jar: ReturnType<typeof createJar>) {
  const copy = createJar();
  for (const [k, v] of jar.jar) copy.jar.set(k, v);
  return copy;
}
