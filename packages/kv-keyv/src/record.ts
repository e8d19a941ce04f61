import { KvCorruptError } from "@kvsession/kv";

/**
 * Keyv's on-the-wire record, as its default serializer (@keyv/serialize) writes it:
 * `{"value":":base64:…","expires":1700000000000}`. Bytes travel as base64 text
 * because every Keyv adapter stores strings; the cost is 4/3 the size plus the
 * JSON around it, and a base64 pass each way. Writing exactly this shape means
 * a plain Keyv on the same adapter and namespace reads our values back as Buffers.
 */
export function encodeRecord(value: Uint8Array, expiresAt: number | undefined): string {
  const b64 = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
  return expiresAt === undefined
    ? `{"value":":base64:${b64}"}`
    : `{"value":":base64:${b64}","expires":${expiresAt}}`;
}

const utf8 = new TextEncoder();

export interface DecodedRecord {
  value: Uint8Array;
  expiresAt: number | undefined;
}

/**
 * Reads a record back. Values a Keyv user wrote as something other than bytes
 * are handed out as their UTF-8 text (a string) or JSON text (anything else),
 * so a store can adopt existing Keyv data without failing on it.
 */
export function decodeRecord(raw: unknown, key: string): DecodedRecord | undefined {
  if (raw === undefined || raw === null) return undefined;
  // Keyv's Map store may hold already-deserialized objects when serialize is turned off.
  let data: unknown = raw;
  if (typeof raw === "string") {
    try {
      data = JSON.parse(raw);
    } catch (error) {
      throw new KvCorruptError(
        `Keyv record of key "${key.slice(0, 60)}" is not JSON; it was written with a custom serializer or by another program`,
        { cause: error },
      );
    }
  }
  if (data === null || typeof data !== "object" || !("value" in data))
    throw new KvCorruptError(
      `Keyv record of key "${key.slice(0, 60)}" has no "value" field; it was not written by Keyv`,
    );
  const rec = data as { value: unknown; expires?: unknown };
  const expiresAt = typeof rec.expires === "number" ? rec.expires : undefined;
  const v = rec.value;
  if (typeof v === "string") {
    if (v.startsWith(":base64:")) {
      const b = Buffer.from(v.slice(8), "base64");
      // Detach from Node's shared pool so the caller's buffer holds only this value.
      return { value: new Uint8Array(b), expiresAt };
    }
    return { value: utf8.encode(v.startsWith(":") ? v.slice(1) : v), expiresAt };
  }
  if (v instanceof Uint8Array) return { value: new Uint8Array(v), expiresAt };
  return { value: utf8.encode(JSON.stringify(v) ?? "null"), expiresAt };
}

const TRAILING_EXPIRES = /"expires":(\d+(?:\.\d+)?)\}\s*$/;

/**
 * The deadline of a record without decoding its value: listing checks every
 * key of a namespace, and a base64 decode per key would dominate it.
 */
export function expiresOf(raw: unknown, key: string): number | undefined {
  if (typeof raw === "string") {
    const m = TRAILING_EXPIRES.exec(raw.length > 64 ? raw.slice(-64) : raw);
    if (m) return Number(m[1]);
    if (!raw.includes('"expires"')) return undefined;
  }
  return decodeRecord(raw, key)?.expiresAt;
}
