import { createMemoryStore } from "@kvsession/kv";
import { describe, expect, it } from "vitest";
import { createSessions, SessionBusyError, SessionConfigError, type Sessions } from "../src/index.js";
import { SECRET, seeded } from "./helpers.js";

/** The lease the stored record carries now. */
async function leaseOf(sessions: Sessions): Promise<{ until: number } | undefined> {
  for await (const key of sessions.records.keys())
    return JSON.parse(Buffer.from((await sessions.records.get(key))!).toString()).lease;
  return undefined;
}

describe("serialised mode with a request's own lease timings (OpenInput.serialize)", () => {
  it("a request's waitMs replaces the app's: it gives up while another request holds the session", async () => {
    // The app waits long; the second request asks for almost no wait.
    const sessions = createSessions({
      store: createMemoryStore(),
      secrets: [SECRET],
      serialize: { waitMs: 60_000 },
    });
    const cookieHeader = await seeded(sessions);
    const holder = sessions.open({ cookieHeader, secure: true });
    await holder.get("n");
    const impatient = sessions.open({ cookieHeader, secure: true, serialize: { waitMs: 1 } });
    await expect(impatient.get("n")).rejects.toBeInstanceOf(SessionBusyError);
    await holder.commit();
  });

  it("a request's leaseMs is the lease it writes into the record", async () => {
    const sessions = createSessions({ store: createMemoryStore(), secrets: [SECRET] });
    const cookieHeader = await seeded(sessions);
    const before = Date.now();
    const s = sessions.open({
      cookieHeader,
      secure: true,
      serialize: { leaseMs: 3_600_000, maxHoldMs: 3_600_000 },
    });
    await s.get("n");
    const lease = await leaseOf(sessions);
    expect(lease!.until).toBeGreaterThanOrEqual(before + 3_600_000);
    await s.commit();
    expect(await leaseOf(sessions)).toBeUndefined();
  });

  it("bad timings are a SessionConfigError when the request opens", () => {
    const sessions = createSessions({ store: createMemoryStore(), secrets: [SECRET] });
    expect(() => sessions.open({ serialize: { leaseMs: 0 } })).toThrow(SessionConfigError);
  });
});
