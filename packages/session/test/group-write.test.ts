import { describe, expect, it } from "vitest";
import { createGroupWriter } from "../src/group-write.js";

// The line's bookkeeping, seen through what each flush is handed: the writers of its group and what
// the line's previous flush wrote (undefined: a new line). Each flush is answered by the test.

function recorder() {
  const flushes: Array<{ group: string[]; last: string | undefined; answer: (wrote: string) => void }> = [];
  const write = createGroupWriter<string, string>(
    (_key, group, last) =>
      new Promise<string>((answer) => {
        flushes.push({ group: [...group], last, answer });
      }),
    false,
  );
  return { write, flushes, seen: () => flushes.map(({ group, last }) => ({ group, last })) };
}

/** Lets this turn's ticks and promise reactions run (the line's drain among them), staying in the turn. */
async function reactions(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => process.nextTick(r));
}
const nextTurn = () => new Promise((r) => setImmediate(r));

describe("group writer: a session's line of writes", () => {
  it("writers that come while a write is in flight go together in the next one, on top of it", async () => {
    const { write, flushes, seen } = recorder();
    write("s", "a");
    await reactions();
    write("s", "b");
    write("s", "c");
    flushes[0]!.answer("v1");
    await reactions();
    expect(seen()).toEqual([
      { group: ["a"], last: undefined },
      { group: ["b", "c"], last: "v1" },
    ]);
  });

  it("a write later in the turn its line's last write was answered in builds on that write", async () => {
    const { write, flushes, seen } = recorder();
    write("s", "a");
    await reactions();
    flushes[0]!.answer("v1");
    await reactions(); // the line has drained: nothing was waiting
    write("s", "b");
    await reactions();
    expect(seen()).toEqual([
      { group: ["a"], last: undefined },
      { group: ["b"], last: "v1" },
    ]);
  });

  it("after the next turn the line is gone, so lines do not pile up: a later write starts a new one", async () => {
    const { write, flushes, seen } = recorder();
    write("s", "a");
    await reactions();
    flushes[0]!.answer("v1");
    await reactions();
    await nextTurn();
    write("s", "b");
    await reactions();
    expect(seen()).toEqual([
      { group: ["a"], last: undefined },
      { group: ["b"], last: undefined },
    ]);
  });

  it("lines of different sessions do not meet", async () => {
    const { write, seen } = recorder();
    write("s", "a");
    write("t", "b");
    await reactions();
    expect(seen()).toEqual([
      { group: ["a"], last: undefined },
      { group: ["b"], last: undefined },
    ]);
  });
});
