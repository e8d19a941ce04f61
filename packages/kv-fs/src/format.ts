import { KvCorruptError } from "@kvsession/kv";

/**
 * A value file: a 40-byte header, then the value's bytes.
 *   0..3   "KVF" and format 1
 *   4..11  expiresAt, float64 LE epoch ms (0 = no expiry)
 *   12..27 version: 16 random bytes, new on every write
 *   28..35 value length, float64 LE (a truncated file is detected, not returned short)
 *   36..39 reserved (0)
 */
export const HEADER = 40;
const MAGIC = [0x4b, 0x56, 0x46, 0x01];

export interface Header {
  expiresAt: number | undefined;
  version: string;
  length: number;
}

export function encodeHeader(expiresAt: number | undefined, version: Uint8Array, length: number): Buffer {
  const h = Buffer.alloc(HEADER);
  h.set(MAGIC, 0);
  h.writeDoubleLE(expiresAt ?? 0, 4);
  h.set(version, 12);
  h.writeDoubleLE(length, 28);
  return h;
}

/** Parses the header of `bytes` (the whole file, or at least its first HEADER bytes when `size` is given). */
export function decodeHeader(bytes: Uint8Array, size: number, file: string): Header {
  if (
    size < HEADER ||
    bytes[0] !== MAGIC[0] ||
    bytes[1] !== MAGIC[1] ||
    bytes[2] !== MAGIC[2] ||
    bytes[3] !== MAGIC[3]
  )
    throw corrupt(file, "it does not start with a kv-fs header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER);
  const expiresAt = view.getFloat64(4, true);
  const length = view.getFloat64(28, true);
  if (length !== size - HEADER)
    throw corrupt(file, `it holds ${size - HEADER} value bytes, its header says ${length}`);
  return {
    expiresAt: expiresAt === 0 ? undefined : expiresAt,
    version: Buffer.from(bytes.buffer, bytes.byteOffset + 12, 16).toString("hex"),
    length,
  };
}

function corrupt(file: string, why: string): KvCorruptError {
  return new KvCorruptError(
    `kv-fs value file ${file} is damaged (${why}); delete that file to drop the key — other keys are unaffected`,
  );
}
