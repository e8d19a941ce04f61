/**
 * Redis Cluster routes a key by CRC16(key) mod 16384, hashing only the first
 * `{...}` hash tag when it is non-empty. The driver needs the slot itself for
 * two things: grouping batches per slot (multi-key commands must stay in one
 * slot) and naming each key's version record so it lands in the same slot as
 * the value (a Lua script may only touch keys of one slot).
 */

export const SLOTS = 16384;

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

function step(crc: number, byte: number): number {
  return ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
}

/** CRC16-XMODEM over the UTF-8 bytes of s[from, to), without allocating the bytes. */
function crc16(s: string, from: number, to: number): number {
  let crc = 0;
  for (let i = from; i < to; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      crc = step(crc, c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      crc = step(crc, 0xf0 | (c >> 18));
      crc = step(crc, 0x80 | ((c >> 12) & 0x3f));
    } else if (c >= 0x800) {
      crc = step(crc, 0xe0 | (c >> 12));
    } else {
      crc = step(crc, 0xc0 | (c >> 6));
      crc = step(crc, 0x80 | (c & 0x3f));
      continue;
    }
    crc = step(crc, 0x80 | ((c >> 6) & 0x3f));
    crc = step(crc, 0x80 | (c & 0x3f));
  }
  return crc;
}

/** The cluster slot of a key, by Redis's own rule (hash tags included). */
export function slotOf(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) return crc16(key, open + 1, close) & (SLOTS - 1);
  }
  return crc16(key, 0, key.length) & (SLOTS - 1);
}

export const TAG_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** Per slot, the number of its tag in the order of `tagForSlot`. */
let firsts: Int32Array | undefined;
const tags = new Array<string | undefined>(SLOTS);

/**
 * A short ASCII hash tag for every slot, so `{tag}` can pin a companion key
 * to any slot: the first string of `TAG_ALPHABET` characters, shortest first,
 * then in alphabet order, that hashes to it.
 */
export function tagForSlot(slot: number): string {
  firsts ??= numberFirsts();
  tags[slot] ??= tagNumbered(firsts[slot] as number);
  return tags[slot];
}

/**
 * Builds what `tagForSlot` looks up, once per process, so that a store built at start-up does this
 * work then rather than in the first request that writes with a version.
 */
export function prepareSlotTags(): void {
  firsts ??= numberFirsts();
}

/**
 * Numbers the candidates in that order, carrying each one's CRC on from its prefix's, and keeps
 * only numbers (strings are made per slot on first use).
 */
function numberFirsts(): Int32Array {
  const codes = Array.from(TAG_ALPHABET, (ch) => ch.charCodeAt(0));
  const first = new Int32Array(SLOTS).fill(-1);
  let filled = 0;
  let candidate = 0;
  /** Offers the candidate whose prefix hashes to `crc` and whose last character is `code`. */
  const offer = (crc: number, code: number) => {
    const slot = step(crc, code) & (SLOTS - 1);
    if (first[slot] === -1) {
      first[slot] = candidate;
      filled++;
    }
    candidate++;
  };
  for (const a of codes) offer(0, a);
  for (const a of codes) for (const b of codes) offer(step(0, a), b);
  for (let i = 0; i < codes.length && filled < SLOTS; i++)
    for (let j = 0; j < codes.length && filled < SLOTS; j++) {
      const ab = step(step(0, codes[i] as number), codes[j] as number);
      for (const c of codes) offer(ab, c);
    }
  // Three characters reach every slot (the tests check it).
  return first;
}

/** The string of candidate number `i` in the order above. */
function tagNumbered(i: number): string {
  const a = TAG_ALPHABET;
  const n = a.length;
  if (i < n) return a[i] as string;
  i -= n;
  if (i < n * n) return (a[Math.floor(i / n)] as string) + a[i % n];
  i -= n * n;
  return (a[Math.floor(i / (n * n))] as string) + a[Math.floor(i / n) % n] + a[i % n];
}
