import { createMemoryStore, json, KvError, withCodec } from "@kvsession/kv";

/** Walks through the contract on the memory store and returns what it saw, line by line. */
export async function tour(): Promise<string[]> {
  const out: string[] = [];
  await using store = createMemoryStore({ maxEntries: 10_000 });

  // Typed values through the JSON codec, in an immutable prefix view.
  const carts = withCodec<{ items: string[] }>(store.withPrefix("cart:"), json());
  await carts.set("ada", { items: ["tea"] }, { ttl: 60_000 });
  out.push(`cart of ada: ${JSON.stringify(await carts.get("ada"))}`);
  out.push(`raw key in the store: ${(await store.listKeys()).keys.join(", ")}`);

  // Expiry: never returned after the deadline, whatever the driver.
  await store.set("otp", new TextEncoder().encode("123456"), { ttl: 30 });
  await new Promise((r) => setTimeout(r, 50));
  out.push(`otp after its TTL: ${String(await store.get("otp"))}`);

  // Compare-and-set: two writers holding the same version, one wins.
  const counter = withCodec<number>(store, json());
  await counter.set("visits", 0);
  const { version } = await counter.getVersioned("visits");
  const [a, b] = await Promise.all([
    counter.compareAndSet("visits", version, 1),
    counter.compareAndSet("visits", version, 1),
  ]);
  out.push(`two writers, same version: ${[a, b].filter(Boolean).length} won`);

  // Bad input gets a typed error with a code.
  try {
    await store.set("../../etc/passwd\0", new Uint8Array(1));
  } catch (err) {
    if (err instanceof KvError) out.push(`bad key refused: ${err.code} — ${err.message}`);
  }
  try {
    await carts.set("bob", { items: [], ["__proto__" as string]: { admin: true } } as never);
  } catch (err) {
    if (err instanceof KvError) out.push(`polluting value refused: ${err.code}`);
  }
  return out;
}
