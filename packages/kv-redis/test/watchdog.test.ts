import { KvTimeoutError } from "@kvsession/kv";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createWatchdog } from "../src/watchdog.js";

// The watchdog alone, on commands the test answers by hand (the real-server timeout is in faults.test.ts).
function command() {
  let answer!: (v: string) => void;
  let fail!: (e: unknown) => void;
  const op = new Promise<string>((resolve, reject) => {
    answer = resolve;
    fail = reject;
  });
  return { op, answer, fail };
}
const mapError = (e: unknown): never => {
  throw new Error(`mapped: ${String(e)}`);
};

describe("createWatchdog", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("never times a command out before timeoutMs, whenever between the interval's ticks it was sent", async () => {
    // The interval ticks every 100 ms; the command goes 99 ms after a tick.
    const wd = createWatchdog(400, "test");
    await vi.advanceTimersByTimeAsync(99);
    const c = command();
    let settled = false;
    const out = wd
      .track(c.op, (v) => v, mapError)
      .then(
        (v) => v,
        (e: unknown) => {
          settled = true;
          return e;
        },
      );
    await vi.advanceTimersByTimeAsync(399);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(101);
    expect(await out).toBeInstanceOf(KvTimeoutError);
    wd.stop();
  });

  it("times out exactly the unanswered commands, in any order of answers, and keeps working after", async () => {
    const wd = createWatchdog(1000, "test");
    const cmds = Array.from({ length: 5 }, command);
    const tracked = cmds.map((c) => wd.track(c.op, (v) => v.toUpperCase(), mapError));
    const outcomes = tracked.map((p) =>
      p.then(
        (v) => v,
        (e: unknown) => e,
      ),
    );
    // Answered: the middle, the last and the first; a failure in between. Command 3 never answers.
    cmds[2]!.answer("c");
    cmds[4]!.answer("e");
    cmds[0]!.answer("a");
    cmds[1]!.fail("down");
    await vi.advanceTimersByTimeAsync(1600);
    const got = await Promise.all(outcomes);
    expect(got[0]).toBe("A");
    expect(String(got[1])).toBe("Error: mapped: down");
    expect(got[2]).toBe("C");
    expect(got[3]).toBeInstanceOf(KvTimeoutError);
    expect(got[4]).toBe("E");
    // A late answer to the timed-out command changes nothing, not even for one still waiting.
    const waiting = command();
    const waitingOut = wd.track(waiting.op, (v) => v, mapError).catch((e: unknown) => e);
    cmds[3]!.answer("late");
    await vi.advanceTimersByTimeAsync(10);
    expect(await outcomes[3]).toBeInstanceOf(KvTimeoutError);
    await vi.advanceTimersByTimeAsync(1600);
    expect(await waitingOut).toBeInstanceOf(KvTimeoutError);

    // The list is empty and usable again: a new answered command resolves, a new silent one times out alone.
    const next = command();
    const silent = command();
    const nextOut = wd.track(next.op, (v) => v, mapError);
    const silentOut = wd.track(silent.op, (v) => v, mapError).catch((e: unknown) => e);
    next.answer("n");
    expect(await nextOut).toBe("n");
    await vi.advanceTimersByTimeAsync(1600);
    expect(await silentOut).toBeInstanceOf(KvTimeoutError);
    wd.stop();
  });

  it("does not time out a command answered just before its deadline", async () => {
    const wd = createWatchdog(1000, "test");
    const c = command();
    const out = wd.track(c.op, (v) => v, mapError);
    await vi.advanceTimersByTimeAsync(900);
    c.answer("ok");
    await vi.advanceTimersByTimeAsync(1000);
    expect(await out).toBe("ok");
    wd.stop();
  });

  it("sends a refused command again as its policy says, within the same deadline, and reports the oldest waiting", async () => {
    const refused = new Error("CLUSTERDOWN The cluster is down");
    const wd = createWatchdog(1000, "test", (e, since) =>
      e === refused && Date.now() - since < 400 ? 50 : undefined,
    );
    // Refused twice, then answered: the caller sees only the answer.
    let sent = 0;
    const flaky = () => (++sent < 3 ? Promise.reject(refused) : Promise.resolve("ok"));
    const out = wd.track(flaky(), (v) => v, mapError, flaky);
    expect(wd.oldest()).toBeDefined();
    await vi.advanceTimersByTimeAsync(200);
    expect(await out).toBe("ok");
    expect(sent).toBe(3);
    expect(wd.oldest()).toBeUndefined();
    // Refused for longer than the policy allows: the last refusal is the caller's error.
    const always = () => Promise.reject(refused);
    const gaveUp = wd.track(always(), (v) => v, mapError, always).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(600);
    expect(String(await gaveUp)).toBe("Error: mapped: Error: CLUSTERDOWN The cluster is down");
    // Any other error is not sent again.
    let other = 0;
    const broken = () => {
      other++;
      return Promise.reject(new Error("WRONGTYPE"));
    };
    const failed = wd.track(broken(), (v) => v, mapError, broken).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(String(await failed)).toBe("Error: mapped: Error: WRONGTYPE");
    expect(other).toBe(1);
    wd.stop();
  });

  it("without a deadline, still sends a refused command again while its policy allows", async () => {
    const refused = new Error("LOADING Redis is loading the dataset in memory");
    const wd = createWatchdog(0, "test", (e, since) =>
      e === refused && Date.now() - since < 300 ? 50 : undefined,
    );
    let sent = 0;
    const flaky = () => (++sent < 4 ? Promise.reject(refused) : Promise.resolve("ok"));
    const out = wd.track(flaky(), (v) => v, mapError, flaky);
    await vi.advanceTimersByTimeAsync(300);
    expect(await out).toBe("ok");
    const always = () => Promise.reject(refused);
    const gaveUp = wd.track(always(), (v) => v, mapError, always).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(500);
    expect(String(await gaveUp)).toMatch(/mapped: .*LOADING/);
    wd.stop();
  });
});
