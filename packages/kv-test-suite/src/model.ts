import type { KvStore } from "@kvsession/kv";
import fc from "fast-check";
import { expect } from "vitest";

const KEYS = ["a", "b", "a:b", "a*", "é", "../a", "k".repeat(40)];
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

type Op =
  | { op: "set"; key: string; value: string }
  | { op: "get"; key: string }
  | { op: "delete"; key: string }
  | { op: "has"; key: string }
  | { op: "setIfAbsent"; key: string; value: string }
  | { op: "cas"; key: string; value: string; stale: boolean }
  | { op: "deleteMany"; keys: string[] }
  | { op: "list"; prefix: string }
  | { op: "clearView"; prefix: string };

const key = fc.constantFrom(...KEYS);
const value = fc.string({ maxLength: 8 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), key, value }),
  fc.record({ op: fc.constant("get" as const), key }),
  fc.record({ op: fc.constant("delete" as const), key }),
  fc.record({ op: fc.constant("has" as const), key }),
  fc.record({ op: fc.constant("setIfAbsent" as const), key, value }),
  fc.record({ op: fc.constant("cas" as const), key, value, stale: fc.boolean() }),
  fc.record({ op: fc.constant("deleteMany" as const), keys: fc.array(key, { maxLength: 3 }) }),
  fc.record({ op: fc.constant("list" as const), prefix: fc.constantFrom("", "a", "a:", "k", "..") }),
  fc.record({ op: fc.constant("clearView" as const), prefix: fc.constantFrom("a", "a:", "z") }),
);

/**
 * Runs random operation sequences against the store and a Map, and fails on
 * the first divergence; fast-check then shrinks it to a minimal sequence.
 */
export async function runModelCheck(store: KvStore, runs: number): Promise<void> {
  const caps = store.capabilities;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), async (ops) => {
      await store.clear();
      const model = new Map<string, string>();
      for (const o of ops) {
        switch (o.op) {
          case "set":
            await store.set(o.key, enc(o.value));
            model.set(o.key, o.value);
            break;
          case "get":
            expect(dec(await store.get(o.key))).toBe(model.get(o.key));
            break;
          case "delete":
            expect(await store.delete(o.key)).toBe(model.delete(o.key));
            break;
          case "has":
            expect(await store.has(o.key)).toBe(model.has(o.key));
            break;
          case "deleteMany": {
            const expected = o.keys.map((k) => model.delete(k));
            // Duplicate keys in one batch: only the first can have found it.
            const got = await store.deleteMany(o.keys);
            expect(got.filter(Boolean).length).toBe(expected.filter(Boolean).length);
            break;
          }
          case "setIfAbsent": {
            if (!caps.setIfAbsent) break;
            const wrote = await store.setIfAbsent(o.key, enc(o.value));
            expect(wrote).toBe(!model.has(o.key));
            if (wrote) model.set(o.key, o.value);
            break;
          }
          case "cas": {
            if (!caps.compareAndSet) break;
            const { value: v, version } = await store.getVersioned(o.key);
            expect(dec(v)).toBe(model.get(o.key));
            if (o.stale) {
              // Bump the version behind the CAS: it must now fail.
              await store.set(o.key, enc(model.get(o.key) ?? "bump"));
              model.set(o.key, model.get(o.key) ?? "bump");
              expect(await store.compareAndSet(o.key, version, enc(o.value))).toBe(false);
            } else {
              const written = await store.compareAndSet(o.key, version, enc(o.value));
              expect(written).toBe((await store.getVersioned(o.key)).version);
              model.set(o.key, o.value);
            }
            break;
          }
          case "list": {
            const got = new Set<string>();
            for await (const k of store.keys(o.prefix, 2)) got.add(k);
            const want = [...model.keys()].filter((k) => k.startsWith(o.prefix)).sort();
            expect([...got].sort()).toEqual(want);
            break;
          }
          case "clearView":
            await store.withPrefix(o.prefix).clear();
            for (const k of [...model.keys()]) if (k.startsWith(o.prefix)) model.delete(k);
            break;
        }
      }
    }),
    { numRuns: runs },
  );
}
