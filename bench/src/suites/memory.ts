import { createMemoryStore } from "@kvsession/kv";
import Keyv from "keyv";
import type { BenchCase, BenchSuite } from "../types.js";

const KEYS = 10_000;
const value = new Uint8Array(100).fill(7);
const key = (i: number) => `k${i % KEYS}`;

type Api = { get(k: string): Promise<unknown>; set(k: string, v: Uint8Array): Promise<unknown> };

function cases(variant: "get" | "set"): BenchCase[] {
  const make = (
    name: string,
    role: BenchCase["role"],
    open: () => { api: Api; close(): Promise<void> },
  ): BenchCase => ({
    name,
    role,
    variant: `${variant} 100 B`,
    async create() {
      const { api, close } = open();
      for (let i = 0; i < KEYS; i++) await api.set(key(i), value);
      return { op: variant === "get" ? (i) => api.get(key(i)) : (i) => api.set(key(i), value), close };
    },
  });
  return [
    make("MemoryStore", "ours", () => {
      const s = createMemoryStore();
      return { api: s, close: () => s.close() };
    }),
    make("Map in async functions", "limit", () => {
      const m = new Map<string, Uint8Array>();
      const api: Api = {
        async get(k) {
          return m.get(k);
        },
        async set(k, v) {
          m.set(k, v);
        },
      };
      return { api, close: async () => m.clear() };
    }),
    make("Keyv (default memory store)", "peer", () => {
      const k = new Keyv<Uint8Array>();
      return { api: k, close: () => k.disconnect() };
    }),
  ];
}

export default {
  title: "MemoryStore vs a plain Map (the limit) and Keyv's memory store (the peer)",
  inFlight: [1, 64],
  ops: 300_000,
  targets: { limit: 0.5, peer: 3 },
  notes:
    "The limit is a `Map` behind `async get/set` functions: no validation, no TTL, no copies. MemoryStore validates every key, checks the deadline, and copies values in and out so callers can never mutate stored bytes. 10,000 keys are pre-loaded.",
  cases: [...cases("get"), ...cases("set")],
} satisfies BenchSuite;
