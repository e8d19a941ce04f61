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

let tags: string[] | undefined;

/**
 * A short ASCII hash tag for every slot, so `{tag}` can pin a companion key
 * to any slot. Built once, on first use, in a few milliseconds.
 */
export function tagForSlot(slot: number): string {
  if (!tags) tags = buildTags();
  return tags[slot] as string;
}

function buildTags(): string[] {
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const out = new Array<string>(SLOTS);
  let filled = 0;
  const visit = (s: string) => {
    const slot = crc16(s, 0, s.length) & (SLOTS - 1);
    if (out[slot] === undefined) {
      out[slot] = s;
      filled++;
    }
  };
  for (const a of alphabet) visit(a);
  for (const a of alphabet) for (const b of alphabet) visit(a + b);
  for (const a of alphabet) for (const b of alphabet) for (const c of alphabet) visit(a + b + c);
  if (filled < SLOTS) {
    for (let n = 0; filled < SLOTS; n++) visit(`~${n.toString(36)}`);
  }
  return out;
}
