import { describe, expect, it } from "vitest";
import { type BatchKind, createCoalescer } from "../src/driver.js";
import { KvConnectionError } from "../src/index.js";

/** A kind over a Map that records every command it is sent; `failMany` makes batches throw. */
function recorder(data: Map<string, string>, failMany?: () => Error | undefined) {
  const sent: string[][] = [];
  const kind: BatchKind<string, string | undefined> = {
    one: async (k) => {
      sent.push([k]);
      if (k === "bad") throw new Error("bad key");
      return data.get(k);
    },
    many: async (ks) => {
      sent.push(ks);
      const err = failMany?.();
      if (err) throw err;
      return ks.map((k) => data.get(k));
    },
  };
  return { sent, kind };
}

describe("createCoalescer", () => {
  const data = new Map(Array.from({ length: 64 }, (_, i) => [`k${i}`, `v${i}`]));

  it("a lone operation goes out at once, alone; the ones issued meanwhile share commands of at most maxBatch", async () => {
    const c = createCoalescer(16);
    const { sent, kind } = recorder(data);
    const got = await Promise.all(Array.from({ length: 64 }, (_, i) => c.add(kind, `k${i}`)));
    expect(got).toEqual(Array.from({ length: 64 }, (_, i) => `v${i}`));
    expect(sent.map((s) => s.length)).toEqual([1, 16, 16, 16, 15]);
    expect(sent.flat()).toEqual(Array.from({ length: 64 }, (_, i) => `k${i}`));
  });

  it("a kind that sizes its operations gets batches of at most maxBytes; an oversized one goes alone", async () => {
    const c = createCoalescer(16, 100);
    const { sent, kind } = recorder(data);
    const sized: BatchKind<string, string | undefined> = { ...kind, bytes: (k) => (k === "k9" ? 500 : 30) };
    await Promise.all(Array.from({ length: 14 }, (_, i) => c.add(sized, `k${i}`)));
    // k0 alone at once; then runs of three (90 bytes; a fourth would make 120), k9 (500) by itself.
    expect(sent).toEqual([
      ["k0"],
      ["k1", "k2", "k3"],
      ["k4", "k5", "k6"],
      ["k7", "k8"],
      ["k9"],
      ["k10", "k11", "k12"],
      ["k13"],
    ]);
    // Kinds without `bytes` are limited by count only.
    sent.length = 0;
    const d = createCoalescer(16, 100);
    await Promise.all(Array.from({ length: 20 }, (_, i) => d.add(kind, `k${i}`)));
    expect(sent.map((s) => s.length)).toEqual([1, 16, 3]);
  });

  it("keeps issue order across kinds: a run of one kind never jumps another kind queued before it", async () => {
    const c = createCoalescer();
    const a = recorder(data);
    const b = recorder(data);
    const order: string[] = [];
    const tag = (
      name: string,
      kind: BatchKind<string, string | undefined>,
    ): BatchKind<string, string | undefined> => ({
      one: (k) => {
        order.push(`${name}1`);
        return kind.one(k);
      },
      many: (ks) => {
        order.push(`${name}${ks.length}`);
        return kind.many(ks);
      },
    });
    const ka = tag("a", a.kind);
    const kb = tag("b", b.kind);
    await Promise.all([c.add(ka, "k0"), c.add(ka, "k1"), c.add(ka, "k2"), c.add(kb, "k3"), c.add(ka, "k4")]);
    expect(order).toEqual(["a1", "a2", "b1", "a1"]);
  });

  it("flush() sends what is queued at once", async () => {
    const c = createCoalescer();
    const { sent, kind } = recorder(data);
    const first = c.add(kind, "k0");
    const queued = c.add(kind, "k1");
    expect(sent).toEqual([["k0"]]);
    c.flush();
    expect(sent).toEqual([["k0"], ["k1"]]);
    expect(await Promise.all([first, queued])).toEqual(["v0", "v1"]);
  });

  it("a connection error fails the whole batch; any other error retries one by one, so one bad key fails alone", async () => {
    let failure: Error | undefined = new KvConnectionError("down");
    const c = createCoalescer();
    const { kind } = recorder(data, () => failure);
    const down = await Promise.allSettled([c.add(kind, "k0"), c.add(kind, "k1"), c.add(kind, "k2")]);
    expect(down.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected"]);
    expect((down[1] as PromiseRejectedResult).reason).toBeInstanceOf(KvConnectionError);
    failure = new Error("WRONGTYPE");
    const mixed = await Promise.allSettled([
      c.add(kind, "k0"),
      c.add(kind, "k1"),
      c.add(kind, "bad"),
      c.add(kind, "k3"),
    ]);
    expect(mixed.map((r) => (r.status === "fulfilled" ? r.value : "rejected"))).toEqual([
      "v0",
      "v1",
      "rejected",
      "v3",
    ]);
  });
  it("after several answers in one turn, the next operation waits for the ones its neighbours issue; after one, it goes out at once", async () => {
    // Commands answer when the test says so, so "answered in the same turn" is exact.
    const sent: string[][] = [];
    const answers: Array<() => void> = [];
    const kind: BatchKind<string, string> = {
      one: (k) => {
        sent.push([k]);
        return new Promise((resolve) => answers.push(() => resolve(k)));
      },
      many: (ks) => {
        sent.push(ks);
        return new Promise((resolve) => answers.push(() => resolve(ks)));
      },
    };
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const c = createCoalescer();

    // Two commands on the wire (the first alone, the second flushed), both answered in one turn.
    const first = [c.add(kind, "a"), c.add(kind, "b")];
    c.flush();
    expect(sent).toEqual([["a"], ["b"]]);
    for (const answer of answers.splice(0)) answer();
    await Promise.all(first);
    // Their callers issue again in this same turn: nothing leaves alone, the two share a command.
    const second = [c.add(kind, "c"), c.add(kind, "d")];
    expect(sent).toHaveLength(2);
    await turn();
    expect(sent).toEqual([["a"], ["b"], ["c", "d"]]);
    for (const answer of answers.splice(0)) answer();
    await Promise.all(second);

    // One command answered (in a later turn): the next operation is a lone caller's and goes at once.
    await turn();
    const lone = c.add(kind, "e");
    expect(sent).toEqual([["a"], ["b"], ["c", "d"], ["e"]]);
    for (const answer of answers.splice(0)) answer();
    await lone;
    const next = c.add(kind, "f");
    expect(sent.at(-1)).toEqual(["f"]);
    for (const answer of answers.splice(0)) answer();
    await next;
  });

  it("what a flush's callers issue next reaches a client that writes at setImmediate before that client's write of the flush", async () => {
    // A client like node-redis: commands handed to it wait for one socket write at setImmediate.
    const writes: string[][] = [];
    let pending: string[] = [];
    const hand = (command: string) => {
      if (pending.length === 0)
        setImmediate(() => {
          writes.push(pending);
          pending = [];
        });
      pending.push(command);
    };
    const c = createCoalescer();
    const unanswered = new Promise<never>(() => {});
    const kind: BatchKind<string, string> = {
      one: (k) => {
        hand(`GET ${k}`);
        return unanswered;
      },
      many: (ks) => {
        hand(`MGET ${ks.join(" ")}`);
        // A caller woken by this batch's turn issues its next operation straight away.
        queueMicrotask(() => void c.add(kind, "d"));
        return unanswered;
      },
    };
    void c.add(kind, "a");
    void c.add(kind, "b");
    void c.add(kind, "c");
    for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
    // "d" shares the client's write with the batch before it, instead of a write of its own a turn later.
    expect(writes).toEqual([["GET a"], ["MGET b c", "GET d"]]);
  });
});
