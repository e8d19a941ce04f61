import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";

/**
 * Sealed-cookie format: base64url( version | flags | nonce(12) | ciphertext | tag(16) ).
 * The AAD binds the header bytes, the cookie name and the number of chunks, so a
 * blob moved to another cookie name, or reassembled from a different chunk count,
 * fails authentication.
 */
const VERSION = 1;
const FLAG_DEFLATE = 1;
const NONCE = 12;
const TAG = 16;
const HEADER = 2;
/** Inflation cap: a sealed payload is at most a few cookies, so a "zip bomb" stops here. */
const MAX_PLAINTEXT = 256 * 1024;

function aad(header: Buffer, name: string, chunks: number): Buffer {
  return Buffer.concat([header, Buffer.from(`|${name}|${chunks}`, "utf8")]);
}

export function compress(plain: Buffer, threshold: number): { body: Buffer; flags: number } {
  if (plain.length <= threshold) return { body: plain, flags: 0 };
  const z = deflateRawSync(plain);
  return z.length < plain.length ? { body: z, flags: FLAG_DEFLATE } : { body: plain, flags: 0 };
}

/** base64url length of a sealed blob whose (possibly compressed) body has n bytes. */
export function sealedLength(bodyBytes: number): number {
  return Math.ceil(((HEADER + NONCE + bodyBytes + TAG) * 4) / 3);
}

export function seal(key: Buffer, body: Buffer, flags: number, name: string, chunks: number): string {
  const header = Buffer.from([VERSION, flags]);
  const nonce = randomBytes(NONCE);
  const c = createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(aad(header, name, chunks));
  const ct = Buffer.concat([c.update(body), c.final()]);
  return Buffer.concat([header, nonce, ct, c.getAuthTag()]).toString("base64url");
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/** The plaintext and the index of the key that opened it, or undefined for anything forged, foreign or damaged. */
export function unseal(
  keys: readonly Buffer[],
  text: string,
  name: string,
  chunks: number,
): { plain: Buffer; keyIndex: number } | undefined {
  if (!B64URL.test(text)) return undefined;
  const raw = Buffer.from(text, "base64url");
  if (raw.toString("base64url") !== text) return undefined;
  if (raw.length < HEADER + NONCE + TAG || raw[0] !== VERSION || (raw[1]! & ~FLAG_DEFLATE) !== 0)
    return undefined;
  const header = raw.subarray(0, HEADER);
  const nonce = raw.subarray(HEADER, HEADER + NONCE);
  const ct = raw.subarray(HEADER + NONCE, raw.length - TAG);
  const tag = raw.subarray(raw.length - TAG);
  for (let i = 0; i < keys.length; i++) {
    let body: Buffer;
    try {
      const d = createDecipheriv("aes-256-gcm", keys[i]!, nonce);
      d.setAAD(aad(header, name, chunks));
      d.setAuthTag(tag);
      body = Buffer.concat([d.update(ct), d.final()]);
    } catch {
      continue;
    }
    if ((raw[1]! & FLAG_DEFLATE) === 0) return { plain: body, keyIndex: i };
    try {
      return { plain: inflateRawSync(body, { maxOutputLength: MAX_PLAINTEXT }), keyIndex: i };
    } catch {
      return undefined;
    }
  }
  return undefined;
}
