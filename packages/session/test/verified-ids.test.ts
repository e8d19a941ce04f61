import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deriveKeys, hashId, newSessionId, secretBytes, signId, unsignId } from "../src/crypto.js";
import { createVerifiedIds } from "../src/verified-ids.js";
import { SECRET, SECRET_2 } from "./helpers.js";

const keys = deriveKeys(secretBytes([SECRET, SECRET_2]), "cookie-signature");
const onlyFirst = keys.slice(0, 1);
const oldKeyOnly = keys.slice(1);

/** Replaces the character at i of s. */
const swap = (s: string, i: number, c: string) => s.slice(0, i) + c + s.slice(i + 1);

describe("createVerifiedIds", () => {
  it("reports a value signed with an older key as stale, before and after the ID is kept", () => {
    const ids = createVerifiedIds(keys);
    const id = newSessionId();
    const old = signId(oldKeyOnly, id);
    for (let round = 0; round < 2; round++) {
      expect(ids.verify(old)).toBe(id);
      expect(ids.stale(old)).toBe(true);
    }
    const current = signId(keys, id);
    expect(ids.verify(current)).toBe(id);
    expect(ids.stale(current)).toBe(false);
    expect(ids.sign(id, hashId(id))).toBe(current);
  });

  it("answers exactly as unsignId, before and after an ID is kept", () => {
    const ids = createVerifiedIds(keys);
    const id = newSessionId();
    const good = signId(keys, id);
    expect(ids.verify(good)).toBe(id);
    expect(ids.size()).toBe(1);
    // Now kept: the same answers as the full check, for the good value and every broken twin.
    expect(ids.verify(good)).toBe(id);
    const sigStart = 44;
    for (const bad of [
      swap(good, sigStart, good[sigStart] === "A" ? "B" : "A"),
      swap(good, good.length - 1, good.at(-1) === "A" ? "B" : "A"),
      `${good}A`,
      good.slice(0, -1),
      swap(good, 43, "!"),
      `${id}.${"A".repeat(43)}`,
    ]) {
      expect(unsignId(keys, bad)).toBeUndefined();
      expect(ids.verify(bad)).toBeUndefined();
    }
  });

  it("refuses a non-ASCII twin of a kept signature (latin1 keeps only the low byte)", () => {
    const ids = createVerifiedIds(keys);
    const id = newSessionId();
    const good = signId(keys, id);
    expect(ids.verify(good)).toBe(id);
    // U+0141 "Ł" is 0x41 "A" once latin1 drops its high byte; U+0100 + code is the same trick for any letter.
    const at = 50;
    const twin = swap(good, at, String.fromCharCode(0x100 + good.charCodeAt(at)));
    expect(Buffer.from(twin, "latin1").toString("latin1")).toBe(good);
    expect(ids.verify(twin)).toBeUndefined();
    expect(unsignId(keys, twin)).toBeUndefined();
  });

  it("keeps only IDs that verified: forged cookies never fill it", () => {
    const ids = createVerifiedIds(keys, 4);
    for (let i = 0; i < 50; i++) {
      const forged = `${newSessionId()}.${randomBytes(32).toString("base64url")}`;
      expect(ids.verify(forged)).toBeUndefined();
    }
    expect(ids.size()).toBe(0);
  });

  it("is bounded: the oldest kept ID goes first, and still verifies the long way", () => {
    const ids = createVerifiedIds(keys, 3);
    const all = Array.from({ length: 5 }, () => newSessionId());
    for (const id of all) expect(ids.verify(signId(keys, id))).toBe(id);
    expect(ids.size()).toBe(3);
    expect(ids.verify(signId(keys, all[0]!))).toBe(all[0]);
    expect(ids.size()).toBe(3);
  });

  it("verifies a cookie signed with an older key after the same ID was kept under the newer one", () => {
    const ids = createVerifiedIds(keys);
    const id = newSessionId();
    expect(ids.verify(signId(onlyFirst, id))).toBe(id);
    // The kept signature is the first key's; the old key's differs, so the full check runs and accepts it.
    const byOld = signId(oldKeyOnly, id);
    expect(byOld).not.toBe(signId(onlyFirst, id));
    expect(ids.verify(byOld)).toBe(id);
  });

  it("hands out the store handle: hashId of the ID, kept or not", () => {
    const ids = createVerifiedIds(keys);
    const id = newSessionId();
    expect(ids.handle(id)).toBe(hashId(id));
    ids.verify(signId(keys, id));
    expect(ids.handle(id)).toBe(hashId(id));
    const fresh = newSessionId();
    expect(ids.sign(fresh, hashId(fresh))).toBe(signId(keys, fresh));
    expect(ids.size()).toBe(2);
    expect(ids.verify(signId(keys, fresh))).toBe(fresh);
  });

  it("never disagrees with unsignId on random edits of kept cookies (property)", () => {
    const ids = createVerifiedIds(keys, 8);
    const pool = Array.from({ length: 6 }, () => newSessionId());
    const alphabet = "ABCabc019_-.!~ \u0141\u0100\u00ff\u{1F600}";
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: pool.length - 1 }),
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...alphabet)), { maxLength: 3 }),
        fc.constantFrom("none", "append", "truncate"),
        (which, oldKey, edits, tail) => {
          let v = signId(oldKey ? oldKeyOnly : onlyFirst, pool[which]!);
          for (const [at, c] of edits) v = swap(v, at % v.length, c);
          if (tail === "append") v += "A";
          if (tail === "truncate") v = v.slice(0, -1);
          expect(ids.verify(v)).toBe(unsignId(keys, v));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
