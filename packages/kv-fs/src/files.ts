import { randomFillSync } from "node:crypto";
import {
  closeSync,
  fdatasync,
  fstatSync,
  fsync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { KEY_NAME, SEGMENT, segments, shardName, shardOf } from "./encoding.js";
import { decodeHeader, encodeHeader, HEADER, type Header } from "./format.js";

export type Durability = "none" | "normal" | "full";

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;
const syncFd = (fn: typeof fsync, fd: number) =>
  new Promise<void>((resolve, reject) => fn(fd, (e) => (e ? reject(e) : resolve())));

// Versions and temp names come from one pre-filled random pool: a syscall per 256 writes, not per write.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;
function random(n: number): Buffer {
  if (poolAt + n > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const out = Buffer.from(pool.subarray(poolAt, poolAt + n));
  poolAt += n;
  return out;
}

/** Where a key lives: `dir/<shard>/<segment+>/…/<name>`. */
export function pathOf(dir: string, key: string, encoded: string): string {
  // Plain concatenation: dir is already absolute and normalised, names hold no separators.
  if (encoded.length <= SEGMENT) return `${dir}/${shardName(shardOf(key))}/${encoded}`;
  return join(dir, shardName(shardOf(key)), ...segments(encoded));
}

export interface FileEntry {
  header: Header;
  value?: Uint8Array;
}

/** Reads a value file whole; undefined when there is none. Small syscalls are synchronous: no thread-pool hop. */
export function readEntry(file: string): FileEntry | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return undefined;
    throw e;
  }
  const header = decodeHeader(buf, buf.length, file);
  // readFileSync may hand back a slice of Node's shared pool: copy the value out.
  const value = new Uint8Array(header.length);
  value.set(buf.subarray(HEADER));
  return { header, value };
}

/** Reads only the header (has, listing keys, the sweep). */
export function readHeader(file: string): Header | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return undefined;
    throw e;
  }
  try {
    const h = Buffer.alloc(HEADER);
    const n = readSync(fd, h, 0, HEADER, 0);
    return decodeHeader(h, n < HEADER ? n : fstatSync(fd).size, file);
  } finally {
    closeSync(fd);
  }
}

export function ensureDirs(dir: string, file: string): void {
  // Created one level at a time below the store's root, never the root itself:
  // a root that vanished (unmounted volume) is an error, not something to recreate.
  const missing: string[] = [];
  for (let d = dirname(file); d !== dir && d.length > dir.length; d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (e) {
      if (code(e) !== "EEXIST") throw e;
    }
  }
}

/**
 * Writes a value atomically: a temp file next to the target, written, flushed
 * (unless durability "none"), renamed over the target, and with "full" the
 * directory flushed too so the rename itself survives a power loss. A failure
 * at any step leaves the previous value in place and removes the temp file.
 */
export async function writeEntry(
  dir: string,
  file: string,
  value: Uint8Array,
  expiresAt: number | undefined,
  durability: Durability,
): Promise<string> {
  const version = random(16);
  const tmp = `${file}.${random(6).toString("hex")}.tmp`;
  let fd: number;
  try {
    fd = openSync(tmp, "wx");
  } catch (e) {
    if (code(e) !== "ENOENT") throw e;
    ensureDirs(dir, file);
    fd = openSync(tmp, "wx");
  }
  try {
    writeAll(fd, encodeHeader(expiresAt, version, value.byteLength));
    writeAll(fd, value);
    if (durability !== "none") await syncFd(fdatasync, fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, file);
  } catch (e) {
    if (fd !== -1) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {}
    throw e;
  }
  if (durability === "full") await syncDir(dirname(file));
  return version.toString("hex");
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
}

export async function syncDir(d: string): Promise<void> {
  const fd = openSync(d, "r");
  try {
    await syncFd(fsync, fd);
  } finally {
    closeSync(fd);
  }
}

/** Unlinks a key's file; true when there was one. Empty directories of a long key are pruned. */
export function removeEntry(dir: string, file: string): boolean {
  try {
    unlinkSync(file);
  } catch (e) {
    if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return false;
    throw e;
  }
  pruneDirs(dir, file);
  return true;
}

/** Removes the empty segment directories of a long key, innermost first; stops at the first non-empty one. */
export function pruneDirs(dir: string, file: string): void {
  for (let d = dirname(file); d.endsWith("+") && d.length > dir.length; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      break;
    }
  }
}

/** The encoded names of every key in one shard, sorted, long keys reassembled from their segment directories. */
export function shardNames(shardDir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, head: string) => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return; // removed behind our back
      throw e;
    }
    for (const ent of entries) {
      const name = ent.name;
      if (ent.isDirectory()) {
        if (name.endsWith("+") && KEY_NAME.test(name.slice(0, -1)))
          walk(join(d, name), head + name.slice(0, -1));
      } else if (KEY_NAME.test(name)) out.push(head + name);
    }
  };
  walk(shardDir, "");
  return out.sort();
}

/** Temp files of writers that died mid-write, and leftovers of broken locks, older than `ageMs`. */
export function leftovers(shardDir: string): string[] {
  try {
    return readdirSync(shardDir)
      .filter((n) => n.endsWith(".tmp") || n.endsWith(".stale"))
      .map((n) => join(shardDir, n));
  } catch {
    return [];
  }
}
