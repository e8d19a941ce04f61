import { describe, expect, it } from "vitest";
import { createKeySpace } from "../src/keys.js";
import { SLOTS, slotOf, TAG_ALPHABET, tagForSlot } from "../src/slots.js";

// Version records are stored under these tags, so the table is part of the data layout: it must never change.

/** The table by its definition: every string of alphabet characters, shortest first, in alphabet order; the first to reach a slot names it. */
function referenceTags(): string[] {
  const out = new Array<string>(SLOTS);
  const visit = (s: string) => {
    const slot = slotOf(s);
    if (out[slot] === undefined) out[slot] = s;
  };
  for (const a of TAG_ALPHABET) visit(a);
  for (const a of TAG_ALPHABET) for (const b of TAG_ALPHABET) visit(a + b);
  for (const a of TAG_ALPHABET) for (const b of TAG_ALPHABET) for (const c of TAG_ALPHABET) visit(a + b + c);
  return out;
}

describe("Cluster slots and hash tags", () => {
  it("computes slots as Redis does (the examples of Redis's own documentation)", () => {
    expect(slotOf("123456789")).toBe(0x31c3 & (SLOTS - 1));
    expect(slotOf("somekey")).toBe(11058);
    expect(slotOf("foo{hash_tag}")).toBe(2515);
    expect(slotOf("{user1000}.following")).toBe(slotOf("user1000"));
    // An empty tag is no tag: the whole key is hashed.
    expect(slotOf("foo{}{bar}")).not.toBe(slotOf("bar"));
    expect(slotOf("foo{{bar}}zap")).toBe(slotOf("{bar"));
  });

  it("gives every slot the tag its definition names, the same as the stored version records were written under", () => {
    const reference = referenceTags();
    const tags = Array.from({ length: SLOTS }, (_, s) => tagForSlot(s));
    expect(reference.every((t) => t !== undefined && t.length <= 3)).toBe(true);
    expect(tags).toEqual(reference);
    for (let s = 0; s < SLOTS; s++) expect(slotOf(`{${tags[s]}}`)).toBe(s);
    // Pinned as written by every earlier version of the driver.
    expect([tagForSlot(0), tagForSlot(1), tagForSlot(2), tagForSlot(16383)]).toEqual([
      "06S",
      "Qi",
      "5L5",
      "6ZJ",
    ]);
  });

  it("names a key's version record in the value's slot", () => {
    const ks = createKeySpace("app:");
    for (const key of ["a", "session:x", "../x", "*", "é", "k".repeat(10_000)])
      expect(slotOf(ks.version(key))).toBe(slotOf(ks.data(key)));
  });
});
