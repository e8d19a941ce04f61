import { createMemoryStore, json, text, withCodec } from "@kvsession/kv";
import Keyv from "keyv";
import type { BenchCase, BenchSuite } from "../types.js";
import { type Api, bytesOf, OBJECT, objectBytes, textOf } from "../values.js";

const KEYS = 10_000;
const key = (i: number) => `k${i % KEYS}`;

type Opened<V> = { api: Api<V>; close(): Promise<void> };

function make<V>(
  variant: string,
  op: "get" | "set",
  value: V,
  name: string,
  role: BenchCase["role"],
  open: () => Opened<V>,
  judge?: BenchCase["judge"],
): BenchCase {
  return {
    name,
    role,
    variant,
    judge,
    async create() {
      const { api, close } = open();
      for (let i = 0; i < KEYS; i++) await api.set(key(i), value);
      return { op: op === "get" ? (i) => api.get(key(i)) : (i) => api.set(key(i), value), close };
    },
  };
}

/** 100-byte values: raw bytes for our byte API and the Map, the same bytes as a string for Keyv and our text codec. */
function hundredBytes(op: "get" | "set"): BenchCase[] {
  const variant = `${op} 100 B`;
  return [
    make(
      variant,
      op,
      bytesOf(100),
      "MemoryStore, bytes",
      "ours",
      () => {
        const s = createMemoryStore();
        return { api: s, close: () => s.close() };
      },
      ["limit"],
    ),
    make(
      variant,
      op,
      textOf(100),
      "MemoryStore + text codec, string",
      "ours",
      () => {
        const s = createMemoryStore();
        return { api: withCodec(s, text), close: () => s.close() };
      },
      ["peer"],
    ),
    make(variant, op, bytesOf(100), "Map in async functions, bytes", "limit", () => {
      const m = new Map<string, Uint8Array>();
      const api: Api<Uint8Array> = {
        async get(k) {
          return m.get(k);
        },
        async set(k, v) {
          m.set(k, v);
        },
      };
      return { api, close: async () => m.clear() };
    }),
    make(variant, op, textOf(100), "Keyv (default memory store), string", "peer", () => {
      const k = new Keyv<string>();
      return { api: k, close: () => k.disconnect() };
    }),
  ];
}

/** A small object, stored as JSON by our JSON codec, by Keyv's serializer and by the hand-written Map. */
function object(op: "get" | "set"): BenchCase[] {
  const variant = `${op} object (${objectBytes()} B of JSON)`;
  return [
    make(
      variant,
      op,
      OBJECT,
      "MemoryStore + JSON codec",
      "ours",
      () => {
        const s = createMemoryStore();
        return { api: withCodec(s, json()), close: () => s.close() };
      },
      ["peer"],
    ),
    make(variant, op, OBJECT, "Map of JSON text in async functions", "limit", () => {
      const m = new Map<string, string>();
      const api: Api<object> = {
        async get(k) {
          const t = m.get(k);
          return t === undefined ? undefined : JSON.parse(t);
        },
        async set(k, v) {
          m.set(k, JSON.stringify(v));
        },
      };
      return { api, close: async () => m.clear() };
    }),
    make(variant, op, OBJECT, "Keyv (default memory store), object", "peer", () => {
      const k = new Keyv<object>();
      return { api: k, close: () => k.disconnect() };
    }),
  ];
}

export default {
  title: "MemoryStore vs a plain Map (the limit) and Keyv's memory store (the peer)",
  inFlight: [1, 64],
  ops: 300_000,
  targets: { limit: 0.5, peer: 3 },
  notes: [
    "10,000 keys pre-loaded per case; gets and sets cycle over them.",
    "100 B: our store with raw bytes is judged against the limit, a `Map` behind `async get/set` functions holding the caller's bytes (no validation, no TTL, no copies); MemoryStore validates every key, checks the deadline, and copies values in and out so callers can never mutate stored bytes.",
    "Keyv's users store strings and objects, so Keyv is given the same 100 bytes as a string, and judged against our store with the text codec (`withCodec(store, text)`) storing that string. Keyv's memory store keeps each value as the JSON text of `{ value, expires }`.",
    "Object: a session-like object of about 100 bytes of JSON, through our JSON codec (`withCodec(store, json())`, which refuses what JSON cannot round-trip and the prototype-pollution keys), through Keyv, and through `JSON.stringify`/`JSON.parse` around a `Map` (the limit).",
  ].join(" "),
  cases: [...hundredBytes("get"), ...hundredBytes("set"), ...object("get"), ...object("set")],
} satisfies BenchSuite;
