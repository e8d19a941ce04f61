// The values the kv suites store, in the form each library's users store them: bytes for the raw
// clients and our byte API, the same bytes as a string for Keyv and our text codec, and a small
// object for Keyv and our JSON codec.

/** `size` ASCII characters: the same `size` bytes whether stored as text or as bytes. */
export function textOf(size: number, fill = "a"): string {
  return fill.repeat(size);
}

export function bytesOf(size: number, fill = "a"): Buffer {
  return Buffer.from(textOf(size, fill));
}

/** A session-like object of about 100 bytes of JSON. */
export const OBJECT = {
  user: "ada",
  visits: 42,
  theme: "dark",
  roles: ["admin", "editor"],
  cart: ["apple", "pear", "plum"],
  flag: true,
};

export const objectBytes = () => Buffer.byteLength(JSON.stringify(OBJECT));

/** What every kv suite's cases are driven through. */
export type Api<V> = { get(k: string): Promise<unknown>; set(k: string, v: V): Promise<unknown> };
