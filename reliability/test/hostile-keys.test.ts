import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { KvError, type KvStore } from "@kvsession/kv";
import { utf8Length } from "@kvsession/kv/driver";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { embeddedDrivers, type OpenedStore, realDrivers } from "../src/drivers.js";
import { sized } from "../src/mode.js";
import { record } from "../src/record.js";

/**
 * Issue 7, "Hostile input": keys an attacker may steer (a user name, a path segment) through
 * every real driver. Each key is either stored and read back exactly, listed under its prefix
 * only, or refused with a typed KvError; no file appears outside kv-fs's directory and the SQL
 * tables hold exactly the expected rows, with the canary table `x` still there.
 */
const drivers = await realDrivers();
const RUNS = sized(200, 3000);

const HOSTILE: Record<string, string> = {
  "dot-dot-slash": "../../etc/passwd",
  "deep dot-dot-slash": "../../../../../../../../../../etc/passwd",
  "dot-dot-backslash": "..\\..\\x",
  "absolute path": "/etc/passwd",
  slash: "/",
  "double slash": "//",
  dot: ".",
  "dot-dot": "..",
  "NUL inside": "a\0b",
  NUL: "\0",
  "10 KB": "k".repeat(10 * 1024),
  "glob star": "*",
  "glob ?": "?",
  "glob class": "[a-z]",
  "glob mix": "*?[]\\",
  backslash: "\\",
  percent: "%",
  "percent-encoded NUL": "%00",
  "percent-encoded traversal": "%2e%2e%2f",
  underscore: "_",
  "SQL LIKE": "%_%",
  "SQL or": "' OR 1=1 --",
  "SQL drop x": '"; DROP TABLE x; --',
  "SQL drop kv": "'); DROP TABLE kv; --",
  "Redis glob namespace": "sess:*",
  "Redis hash tag": "{tag}x",
  "Windows device": "CON",
  upper: "Aa",
  lower: "aa",
  unicode: "ünïcödé 日本語 😀",
  "max code point": "\u{10FFFF}",
  "lone high surrogate": "\uD800",
  "lone low surrogate": "\uDFFF",
  "surrogate inside": "a\uD800b",
  empty: "",
  space: " ",
  newline: "\n",
  CRLF: "\r\n",
  tab: "\t",
};
/** Refused by the contract on every driver (see docs/architecture.md "Keys are refused, never rewritten"). */
const MUST_REFUSE = new Set([
  "NUL inside",
  "NUL",
  "lone high surrogate",
  "lone low surrogate",
  "surrogate inside",
  "empty",
]);

const enc = (s: string) => new TextEncoder().encode(`value of ${s.slice(0, 50)}`);
/** Drivers hand back a Buffer or a plain Uint8Array: compare the bytes. */
const hex = (u: Uint8Array | undefined) => (u === undefined ? undefined : Buffer.from(u).toString("hex"));
const all = async (it: AsyncIterable<string>) => {
  const out: string[] = [];
  for await (const x of it) out.push(x);
  return out.sort();
};
/** Every path under `root`, relative to it. */
function walk(root: string, skip?: string): string[] {
  const out: string[] = [];
  const visit = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (p === skip) continue;
      out.push(relative(root, p));
      if (e.isDirectory()) visit(p);
    }
  };
  visit(root);
  return out.sort();
}

const figures: Record<string, unknown> = {};
afterAll(() =>
  record("hostile-keys", {
    what: "hostile keys through every driver: stored exactly or refused with a typed error; no path escape, no injection",
    keys: Object.keys(HOSTILE).length,
    propertyRuns: RUNS,
    drivers: figures,
  }),
);

describe.each(drivers)("hostile keys on $name", (d) => {
  it("each key round-trips exactly or is refused with KvKeyError; listing and SQL rows match", async () => {
    const opened: OpenedStore = await d.open();
    const passwd = statSync("/etc/passwd").mtimeMs;
    const parent = opened.dir === undefined ? undefined : join(opened.dir, "..");
    const outsideBefore = parent === undefined ? [] : walk(parent, opened.dir);
    try {
      const root = opened.store;
      const view = root.withPrefix("p:");
      const outside = ["a", "p", "p;", "q:1", "p\\:x"];
      for (const k of outside) await root.set(k, enc(k));
      await view.set("normal", enc("normal"));
      const accepted: string[] = [];
      const refused: Record<string, string> = {};
      for (const [label, key] of Object.entries(HOSTILE)) {
        try {
          await view.set(key, enc(key));
          accepted.push(key);
        } catch (err) {
          expect(err, label).toBeInstanceOf(KvError);
          expect((err as KvError).code, label).toBe("KV_INVALID_KEY");
          refused[label] = (err as KvError).code;
          continue;
        }
        expect(MUST_REFUSE.has(label), `${label} was accepted`).toBe(false);
        expect(hex(await view.get(key)), label).toBe(hex(enc(key)));
        expect(await view.has(key), label).toBe(true);
        if (root.capabilities.compareAndSet) {
          const v = await view.getVersioned(key);
          expect(await view.compareAndSet(key, v.version, enc(`${key}!`)), label).toEqual(expect.any(String));
          expect(await view.compareAndSet(key, v.version, enc(key)), label).toBe(false);
          expect(
            await view.compareAndSet(key, (await view.getVersioned(key)).version, enc(key)),
            label,
          ).toEqual(expect.any(String));
        }
      }
      for (const label of MUST_REFUSE) expect(refused[label], label).toBe("KV_INVALID_KEY");
      const inView = [...accepted, "normal"].sort();
      // Listing: the view holds exactly what was accepted; a key used as a prefix matches literally (no glob, no LIKE).
      expect(await all(view.keys())).toEqual(inView);
      for (const key of accepted)
        expect(await all(view.keys(key)), `listing under ${JSON.stringify(key.slice(0, 20))}`).toEqual(
          inView.filter((k) => k.startsWith(key)),
        );
      expect(await all(root.keys())).toEqual([...outside, ...inView.map((k) => `p:${k}`)].sort());
      for (const k of outside) expect(hex(await root.get(k))).toBe(hex(enc(k)));
      const rows = await opened.rows?.();
      if (rows !== undefined) expect(rows).toBe(outside.length + inView.length);
      if (opened.canaryIntact) expect(await opened.canaryIntact()).toBe(true);
      if (parent !== undefined) expect(walk(parent, opened.dir)).toEqual(outsideBefore);
      expect(statSync("/etc/passwd").mtimeMs).toBe(passwd);
      // Deleting through the view removes exactly those keys.
      for (const key of accepted) expect(await view.delete(key)).toBe(true);
      expect(await all(view.keys())).toEqual(["normal"]);
      expect(await all(root.keys())).toEqual([...outside, "p:normal"].sort());
      figures[d.name] = {
        accepted: accepted.length,
        refused,
        maxKeyBytes: root.capabilities.maxKeyBytes,
        sqlRows: rows,
        canaryIntact: opened.canaryIntact ? await opened.canaryIntact() : undefined,
        filesOutsideStoreDir: parent === undefined ? undefined : 0,
      };
    } finally {
      await opened.dispose();
    }
  });
});

describe.each(embeddedDrivers)("arbitrary Unicode keys on $name", (d) => {
  it("any string: stored and read back without collision, or refused because the contract forbids it", async () => {
    const opened = await d.open();
    const parent = opened.dir === undefined ? undefined : join(opened.dir, "..");
    const outsideBefore = parent === undefined ? [] : walk(parent, opened.dir);
    const view: KvStore = opened.store.withPrefix("f:");
    const model = new Map<string, Uint8Array>();
    let refusedCount = 0;
    try {
      const keys = fc.oneof(
        fc.string({ unit: "binary", maxLength: 40 }),
        // UTF-16 units one by one: lone surrogates included.
        fc.string({
          unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
          maxLength: 20,
        }),
        fc.string({
          unit: fc.constantFrom(".", "/", "\\", "%", "*", "?", "[", "]", "'", '"', ";", "-", "A", "a"),
          maxLength: 12,
        }),
      );
      await fc.assert(
        fc.asyncProperty(keys, fc.uint8Array({ maxLength: 64 }), async (key, value) => {
          const legal =
            key !== "" &&
            !key.includes("\0") &&
            key.isWellFormed() &&
            utf8Length(key) <= view.capabilities.maxKeyBytes;
          try {
            await view.set(key, value);
          } catch (err) {
            refusedCount++;
            expect(err).toBeInstanceOf(KvError);
            expect((err as KvError).code).toBe("KV_INVALID_KEY");
            expect(legal).toBe(false);
            return;
          }
          expect(legal).toBe(true);
          model.set(key, value);
          expect(hex(await view.get(key))).toBe(hex(value));
        }),
        { numRuns: RUNS },
      );
      // No two keys collided: every key still holds its own last value, and the listing is exactly the model.
      expect(await all(view.keys())).toEqual([...model.keys()].sort());
      for (const [k, v] of model) expect(hex(await view.get(k))).toBe(hex(v));
      if (parent !== undefined) expect(walk(parent, opened.dir)).toEqual(outsideBefore);
      figures[`${d.name} (fast-check)`] = { runs: RUNS, stored: model.size, refused: refusedCount };
    } finally {
      await opened.dispose();
    }
  });
});
