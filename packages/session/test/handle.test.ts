import { createMemoryStore } from "@kvsession/kv";
import { describe, expect, it } from "vitest";
import { createSealedSessions, createSessions, hashId } from "../src/index.js";
import { createJar, request, SECRET } from "./helpers.js";

describe("Session.handle()", () => {
  it("is the SHA-256 of the session ID once there is a session, and undefined before", async () => {
    const sessions = createSessions({ store: createMemoryStore(), secrets: [SECRET] });
    const jar = createJar();
    expect(await sessions.open({ secure: true }).handle()).toBeUndefined();
    const first = await request(sessions, jar, async (s) => {
      s.set("n", 1);
      return s;
    });
    const id = jar.jar.get("__Host-sid")!.split(".")[0]!;
    expect(await first.value.handle()).toBe(hashId(id));
    const { value } = await request(sessions, jar, (s) => s.handle());
    expect(value).toBe(hashId(id));
    // It is the key the per-user API takes.
    await request(sessions, jar, (s) => s.bindUser("u1"));
    const { value: h } = await request(sessions, jar, (s) => s.handle());
    expect(await sessions.revokeSession("u1", h!)).toBe(true);
  });

  it("a sealed session's handle is the hash of its inner ID, stable across requests", async () => {
    const sessions = createSealedSessions({ secrets: [SECRET] });
    const jar = createJar();
    await request(sessions, jar, (s) => s.set("n", 1));
    const a = await request(sessions, jar, (s) => s.handle());
    const b = await request(sessions, jar, (s) => s.handle());
    expect(a.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.value).toBe(a.value);
    expect(
      await createSealedSessions({ secrets: [SECRET] })
        .open({ secure: true })
        .handle(),
    ).toBeUndefined();
  });
});
