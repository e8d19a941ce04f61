import { randomBytes } from "node:crypto";
import { type EntryPage, type KeyPage, KvError, type KvStore } from "@kvsession/kv";
import { expect } from "vitest";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

const b64 = (text: string, url: boolean) => Buffer.from(text, "utf8").toString(url ? "base64url" : "base64");

/** The texts a cursor is the base64 or base64url encoding of (it re-encodes to itself), with the alphabet. */
function decodedForms(cursor: string): Array<{ text: string; url: boolean }> {
  const out: Array<{ text: string; url: boolean }> = [];
  const bare = cursor.replace(/=+$/, "");
  for (const url of [true, false]) {
    const text = Buffer.from(cursor, url ? "base64url" : "base64").toString("utf8");
    if (text !== "" && b64(text, url).replace(/=+$/, "") === bare) out.push({ text, url });
  }
  return out;
}

type Path = Array<string | number>;

/** Paths to the leaves (and, separately, the arrays) of a JSON value; of an array's elements only the first. */
function jsonPaths(value: unknown, at: Path = [], leaves: Path[] = [], arrays: Path[] = []) {
  if (Array.isArray(value)) {
    arrays.push(at);
    if (value.length > 0) jsonPaths(value[0], [...at, 0], leaves, arrays);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) jsonPaths(v, [...at, k], leaves, arrays);
  } else leaves.push(at);
  return { leaves, arrays };
}

/** A copy of `value` with what is at `path` replaced by `swap(it)`. */
function swapAt(value: unknown, path: Path, swap: (x: unknown) => unknown): unknown {
  if (path.length === 0) return swap(value);
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<
    string | number,
    unknown
  >;
  copy[path[0]!] = swapAt(copy[path[0]!], path.slice(1), swap);
  return copy;
}

/** `value` with every leaf (string, number, boolean, null) replaced by `swap(it)`. */
function swapLeaves(value: unknown, swap: (x: unknown) => unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => swapLeaves(v, swap));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, swapLeaves(v, swap)]));
  return swap(value);
}

/**
 * Cursors no store handed out for the listing they are given to: genuine cursors of another
 * prefix or store, those tampered with in their text and — when they are base64 of text or JSON —
 * inside it (each value alone, every element of a list, and every value at once swapped for a key
 * outside the prefix, a number, null, an object, a list, an empty string, a NUL), and hand-made
 * ones (random, keys outside the prefix in the clear and in base64, the empty JSON forms, NUL, a
 * lone surrogate, a megabyte).
 */
export function forgeCursors(genuine: readonly string[], outside: readonly string[]): string[] {
  const out = new Set<string>();
  const add = (c: string) => {
    if (c !== "") out.add(c);
  };
  const far = outside[0] ?? "a:00";
  const swaps: Array<(x: unknown) => unknown> = [
    () => far,
    () => 1,
    () => -1,
    () => null,
    () => ({}),
    () => [far, 1, null],
    () => "",
    (x) => (typeof x === "string" ? x.replaceAll("a:", "b:") : x),
    (x) => (typeof x === "string" ? `${x}\u0000` : x),
  ];
  for (const c of genuine) {
    add(c);
    add(`${c}x`);
    add(c.slice(0, -1));
    add(`${c.slice(0, -1)}${c.endsWith("A") ? "B" : "A"}`);
    add([...c].reverse().join(""));
    add(c.replaceAll("a:", "b:"));
    add(c.repeat(2));
    for (const { text, url } of decodedForms(c)) {
      const again = (v: unknown) => add(b64(JSON.stringify(v), url));
      add(b64(text.replaceAll("a:", "b:"), url));
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        continue;
      }
      const { leaves, arrays } = jsonPaths(json);
      for (const swap of swaps) {
        again(swapLeaves(json, swap));
        for (const path of leaves) again(swapAt(json, path, swap));
        for (const path of arrays) again(swapAt(json, path, (a) => (a as unknown[]).map(swap)));
      }
      for (const path of arrays) again(swapAt(json, path, () => [...outside]));
      for (const whole of [{}, [], null, 42, far, [...outside]]) again(whole);
    }
  }
  for (const o of outside) {
    add(o);
    add(b64(o, true));
    add(b64(o, false));
    add(b64(JSON.stringify([o]), true));
    add(b64(JSON.stringify({ key: o, after: o, cursor: o, keys: [o] }), true));
  }
  for (const c of ["0", "-1", " ", "\uffff", "😀", "\u0000", "a\u0000b", "\ud800", "%FF", "../", "{}", "[]"])
    add(c);
  add(randomBytes(24).toString("base64url"));
  add(randomBytes(16).toString("hex"));
  add("x".repeat(1 << 20));
  add(b64(`a:${"z".repeat(300_000)}`, true));
  return [...out];
}

/**
 * Lists from `first` for a few pages: every key (and value) must be one of `expected`, which holds
 * the listing's own keys and their values; a call may instead fail, but only with a KvError.
 */
async function confined(
  label: string,
  expected: Map<string, string>,
  list: (cursor: string) => Promise<EntryPage | KeyPage>,
  first: string,
): Promise<void> {
  let cursor: string | undefined = first;
  for (let page = 0; page < 10 && cursor !== undefined; page++) {
    let res: EntryPage | KeyPage;
    try {
      res = await list(cursor);
    } catch (error) {
      expect(error, `${label}: a cursor the store did not hand out must fail with a KvError`).toBeInstanceOf(
        KvError,
      );
      return;
    }
    if ("keys" in res) for (const k of res.keys) expect(expected.has(k), `${label}: listed ${k}`).toBe(true);
    else
      for (const e of res.entries)
        expect(dec(e.value), `${label}: listed ${e.key}`).toBe(expected.get(e.key));
    cursor = res.cursor;
  }
}

/**
 * The cursor part of the contract: a cursor comes from the caller, so the store treats it as
 * untrusted. Writes `a:00…a:11` and `b:00…b:11` into `store` (and, with `neighbour`, a second store
 * on the same engine, keys of the same names with other values), collects genuine cursors of other
 * listings (`a:`, a view on `a:`, the neighbour), then lists `b:` — on the store and on a view — from
 * each of them and from every forgery of them (`forgeCursors`), following the returned cursors. Every
 * key and value listed must be the store's own under `b:`; a cursor may be refused, only with a
 * KvError. Throws (an assertion error) on the first violation.
 */
export async function checkForgedCursors(store: KvStore, neighbour?: KvStore): Promise<void> {
  const A = Array.from({ length: 12 }, (_, i) => `a:${String(i).padStart(2, "0")}`);
  const B = A.map((k) => `b${k.slice(1)}`);
  await store.setMany([...A, ...B].map((key) => ({ key, value: enc(`own ${key}`) })));
  const inB = new Map(B.map((k) => [k, `own ${k}`]));
  const inViewB = new Map(B.map((k) => [k.slice(2), `own ${k}`]));
  const viewA = store.withPrefix("a:");
  const viewB = store.withPrefix("b:");

  const genuine: string[] = [];
  const collect = async (list: (cursor: string | undefined) => Promise<string | undefined>) => {
    let cursor: string | undefined;
    for (let page = 0; page < 3; page++) {
      cursor = await list(cursor);
      if (cursor === undefined) break;
      genuine.push(cursor);
    }
  };
  await collect(async (cursor) => (await store.listKeys({ prefix: "a:", cursor, limit: 2 })).cursor);
  await collect(async (cursor) => (await viewA.listEntries({ cursor, limit: 2 })).cursor);
  const outside = ["a:00", "a:05", `${store.prefix}a:00`];
  if (neighbour) {
    const theirs = [...B, "b:zz-neighbour-1", "b:zz-neighbour-2", "a:00"];
    await neighbour.setMany(theirs.map((key) => ({ key, value: enc(`NEIGHBOUR ${key}`) })));
    await collect(async (cursor) => (await neighbour.listKeys({ prefix: "b:", cursor, limit: 2 })).cursor);
    await collect(async (cursor) => (await neighbour.listKeys({ prefix: "", cursor, limit: 1 })).cursor);
    outside.push(`${neighbour.prefix}b:zz-neighbour-1`);
  }
  expect(genuine.length, "listing 12 keys 2 at a time must hand out cursors").toBeGreaterThan(0);

  for (const forged of forgeCursors(genuine, outside)) {
    const label = `cursor ${JSON.stringify(forged.length > 120 ? `${forged.slice(0, 120)}…` : forged)}`;
    await confined(label, inB, (c) => store.listKeys({ prefix: "b:", cursor: c, limit: 5 }), forged);
    await confined(label, inB, (c) => store.listEntries({ prefix: "b:", cursor: c, limit: 5 }), forged);
    await confined(label, inViewB, (c) => viewB.listEntries({ cursor: c, limit: 5 }), forged);
  }
}
