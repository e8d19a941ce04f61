import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { KvArgumentError, KvCorruptError, type KvStore, type KvVersion } from "@kvsession/kv";
import {
  createStore,
  type DriverEntry,
  type DriverListPage,
  type DriverSweepOptions,
  type KvDriver,
  startDriverSweeper,
} from "@kvsession/kv/driver";
import { encodeKey, keyOfName, SHARDS, shardName } from "./encoding.js";
import { toKvError } from "./errors.js";
import {
  type Durability,
  ensureDirs,
  leftovers,
  pathOf,
  pruneDirs,
  readEntry,
  readHeader,
  removeEntry,
  shardNames,
  syncDir,
  writeEntry,
} from "./files.js";
import { withLock } from "./locks.js";

export interface FsStoreOptions extends DriverSweepOptions {
  /** The store's directory (created if missing). It must be empty or a kv-fs directory: the store refuses anything else. */
  dir: string;
  /**
   * `"normal"` (default): each value file is flushed (fdatasync) before it is renamed into place, so
   * a crash or power loss leaves the old or the new value, never a torn one. `"full"`: also flush
   * the directory after the rename, so an acknowledged write survives power loss. `"none"`: no
   * flush — still atomic against a process crash, but a power loss may lose recent writes.
   */
  durability?: Durability;
  /**
   * `true` (default): every write takes a per-key lock file, so `setIfAbsent` and compare-and-set
   * are atomic across the threads and processes of one host sharing the directory. `false`: writes skip the
   * lock (faster) and those two operations are reported unsupported.
   */
  locking?: boolean;
  /** How long a write waits for another process's lock on the same key, in ms. Default 5000. */
  lockTimeoutMs?: number;
  /** Largest value accepted, in bytes. Default 64 MiB. */
  maxValueBytes?: number;
}

const MARKER = "kvsession-fs.json";
const FORMAT = 1;
const MAX_KEY_BYTES = 1024;
/** Room for the longest key (3 bytes per key byte, plus segment separators) under PATH_MAX (4096). */
const MAX_DIR_LENGTH = 4096 - 3 * MAX_KEY_BYTES - 64;
const SHARD_DIR = /^[0-9a-f]{3}$/;
const CURSOR = /^([0-9a-f]{3})\/((?:[a-z0-9_-]|%[0-9A-F]{2})*)$/;
/** Temp files younger than this may belong to a writer still at work. */
const LEFTOVER_AGE_MS = 10 * 60_000;

/**
 * A kvsession store on a directory: one file per key under a safe, reversible
 * file name, sharded over 4096 subdirectories by a hash of the key; atomic
 * writes (temp file, flush, rename); expiry in each file's header, reclaimed
 * by a bounded background sweep; per-key lock files make `setIfAbsent` and
 * compare-and-set atomic across the threads and processes of one host.
 *
 * @example
 * import { createFsStore } from "@kvsession/kv-fs";
 * const store = createFsStore({ dir: "./data/sessions" });
 * await store.set("user:42", new TextEncoder().encode("Ada"), { ttl: 60_000 });
 * console.log(new TextDecoder().decode(await store.get("user:42"))); // "Ada"
 * await store.close();
 */
export function createFsStore(options: FsStoreOptions): KvStore {
  if (typeof options?.dir !== "string" || options.dir === "")
    throw new KvArgumentError("dir must be the path of the store's directory");
  const dir = resolve(options.dir);
  if (dir.length > MAX_DIR_LENGTH)
    throw new KvArgumentError(
      `dir is ${dir.length} characters; at most ${MAX_DIR_LENGTH} leave room for 1 KiB keys under PATH_MAX`,
    );
  const durability = options.durability ?? "normal";
  if (!["none", "normal", "full"].includes(durability))
    throw new KvArgumentError(`durability must be "none", "normal" or "full", got ${String(durability)}`);
  const maxValueBytes = options.maxValueBytes ?? 64 * 1024 * 1024;
  if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > 1024 * 1024 * 1024)
    throw new KvArgumentError("maxValueBytes must be an integer from 1 to 1 GiB");
  let real: string;
  try {
    openDir(dir);
    // One canonical path per directory: the in-process lock table is keyed by it.
    real = realpathSync(dir);
  } catch (error) {
    throw toKvError(error, "open", dir);
  }
  return createStore(fsDriver(real, { ...options, durability, maxValueBytes }));
}

/** The driver under createFsStore, with its sweep exposed (tests, and apps that sweep on their own schedule). */
export interface FsDriver extends KvDriver {
  /** Deletes at most `batch` expired files (examining at most 20x that many) and resolves with how many. */
  sweep(batch: number, now: number): Promise<number>;
}

function openDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const marker = join(dir, MARKER);
  if (existsSync(marker)) {
    let format: unknown;
    try {
      format = (JSON.parse(readFileSync(marker, "utf8")) as { format?: unknown }).format;
    } catch (error) {
      throw new KvCorruptError(`${marker} is not valid JSON; restore it as {"format":${FORMAT}}`, {
        cause: error,
      });
    }
    if (format !== FORMAT)
      throw new KvArgumentError(
        `${dir} holds kv-fs format ${String(format)}, this @kvsession/kv-fs reads format ${FORMAT}; upgrade the package`,
      );
    return;
  }
  // Never adopt a directory with foreign files: clear() would be trusted with it.
  const foreign = readdirSync(dir).filter((n) => !SHARD_DIR.test(n));
  if (foreign.length > 0)
    throw new KvArgumentError(
      `${dir} is not empty and not a kv-fs store (it holds ${foreign.slice(0, 3).join(", ")}…); give the store an empty or new directory`,
    );
  writeFileSync(marker, `${JSON.stringify({ format: FORMAT })}\n`);
}

export function fsDriver(
  dir: string,
  options: FsStoreOptions & { durability: Durability; maxValueBytes: number },
): FsDriver {
  const { durability } = options;
  const locking = options.locking ?? true;
  const lockTimeout = options.lockTimeoutMs ?? 5000;
  const fail = (op: string, error: unknown) => toKvError(error, op, dir);
  const file = (key: string) => pathOf(dir, key, encodeKey(key));
  const live = (expiresAt: number | undefined, now: number) => expiresAt === undefined || expiresAt > now;
  const entry = (e: { header: { expiresAt: number | undefined }; value?: Uint8Array }): DriverEntry =>
    e.header.expiresAt === undefined
      ? { value: e.value! }
      : { value: e.value!, expiresAt: e.header.expiresAt };

  /** Every write to a key goes through here: under its lock when locking is on. */
  async function locked<T>(key: string, op: string, fn: (f: string) => Promise<T> | T): Promise<T> {
    const f = file(key);
    try {
      return locking
        ? await withLock(
            `${f}.lock`,
            lockTimeout,
            () => ensureDirs(dir, f),
            () => fn(f),
          )
        : await fn(f);
    } catch (error) {
      throw fail(op, error);
    }
  }
  async function remove(f: string): Promise<boolean> {
    const removed = removeEntry(dir, f);
    if (removed && durability === "full") await syncDir(join(f, ".."));
    return removed;
  }

  async function sweep(batch: number, now: number): Promise<number> {
    let deleted = 0;
    let examined = 0;
    const budget = batch * 20;
    for (let visited = 0; visited < SHARDS && deleted < batch && examined < budget; visited++) {
      const s = sweepAt;
      const shard = join(dir, shardName(s));
      sweepAt = (sweepAt + 1) % SHARDS;
      for (const tmp of leftovers(shard)) {
        try {
          if (now - statSync(tmp).mtimeMs > LEFTOVER_AGE_MS) unlinkSync(tmp);
        } catch {}
      }
      for (const name of shardNames(shard)) {
        if (deleted >= batch || examined >= budget) break;
        examined++;
        const key = keyOfName(name, s);
        if (key === undefined) continue;
        let h: ReturnType<typeof readHeader>;
        try {
          h = readHeader(file(key));
        } catch {
          continue; // corrupt: left for get() to report and the operator to delete
        }
        if (h === undefined || live(h.expiresAt, now)) continue;
        // Re-checked under the lock: a write may have given it a new deadline meanwhile.
        const gone = await locked(key, "sweep", async (f) => {
          const again = readHeader(f);
          return again !== undefined && !live(again.expiresAt, Date.now()) ? remove(f) : false;
        });
        if (gone) deleted++;
      }
    }
    return deleted;
  }
  let sweepAt = 0;
  // Defaults: a bounded batch of files per tick, examining a bounded multiple of it, every half minute.
  const sweeper = startDriverSweeper(options, { intervalMs: 30_000, batch: 200 }, sweep);

  const driver: FsDriver = {
    sweep,
    name: "fs",
    capabilities: {
      ttl: "emulated",
      ttlGranularityMs: 1,
      setIfAbsent: locking,
      compareAndSet: locking,
      orderedListing: true,
      maxKeyBytes: MAX_KEY_BYTES,
      maxValueBytes: options.maxValueBytes,
    },

    get(key) {
      try {
        const e = readEntry(file(key));
        return e === undefined ? undefined : entry(e);
      } catch (error) {
        throw fail("get", error);
      }
    },

    has(key) {
      try {
        const h = readHeader(file(key));
        return h !== undefined && live(h.expiresAt, Date.now());
      } catch (error) {
        throw fail("has", error);
      }
    },

    async set(key, value, expiresAt) {
      await locked(key, "set", (f) => writeEntry(dir, f, value, expiresAt, durability));
    },

    async delete(key) {
      const existed = await locked(key, "delete", async (f) => {
        let h: ReturnType<typeof readHeader>;
        try {
          h = readHeader(f);
        } catch (error) {
          if (!(error instanceof KvCorruptError)) throw error;
          h = { expiresAt: undefined, version: "", length: 0 }; // a damaged file can still be deleted
        }
        const removed = await remove(f);
        return removed && h !== undefined && live(h.expiresAt, Date.now());
      });
      // A long key's segment directories still held its lock file during the delete: prune them now.
      pruneDirs(dir, file(key));
      return existed;
    },

    async setMany(writes) {
      // The last write of a key wins, as if written in order; distinct keys are written 16 at a time.
      const last = new Map<string, (typeof writes)[number]>();
      for (const w of writes) {
        last.delete(w.key);
        last.set(w.key, w);
      }
      await inParallel([...last.values()], 16, (w) => driver.set(w.key, w.value, w.expiresAt));
    },

    list({ prefix, cursor, limit, values }): DriverListPage {
      const encodedPrefix = encodeKey(prefix);
      let start = 0;
      let after = "";
      if (cursor !== undefined) {
        const m = CURSOR.exec(cursor);
        if (!m) throw new KvArgumentError("cursor is not one this kv-fs store returned");
        start = Number.parseInt(m[1]!, 16);
        after = m[2]!;
      }
      try {
        const shards = readdirSync(dir)
          .filter((n) => SHARD_DIR.test(n))
          .map((n) => Number.parseInt(n, 16))
          .filter((s) => s >= start)
          .sort((a, b) => a - b);
        const items: DriverListPage["items"] = [];
        const now = Date.now();
        // Bounded work per page: a page may come back short (even empty) with a cursor.
        const budget = 2000 + 4 * limit;
        let scanned = 0;
        for (const s of shards) {
          const sdir = join(dir, shardName(s));
          scanned += 16;
          for (const name of shardNames(sdir)) {
            if (s === start && name <= after) continue;
            scanned++;
            if (name.startsWith(encodedPrefix)) {
              const key = keyOfName(name, s);
              const item = key === undefined ? undefined : readItem(key, values, now);
              if (item) items.push(item);
            }
            if (items.length === limit || scanned >= budget)
              return { items, cursor: `${shardName(s)}/${name}` };
          }
          if (scanned >= budget) {
            const next = shards[shards.indexOf(s) + 1];
            return { items, cursor: next === undefined ? undefined : `${shardName(next)}/` };
          }
        }
        return { items, cursor: undefined };
      } catch (error) {
        throw fail("list", error);
      }
    },

    async clear(prefix) {
      const encodedPrefix = encodeKey(prefix);
      let shards: string[];
      try {
        shards = readdirSync(dir).filter((n) => SHARD_DIR.test(n));
      } catch (error) {
        throw fail("clear", error);
      }
      for (const s of shards) {
        const index = Number.parseInt(s, 16);
        for (const name of shardNames(join(dir, s))) {
          if (!name.startsWith(encodedPrefix)) continue;
          const key = keyOfName(name, index);
          if (key !== undefined) await locked(key, "clear", remove);
        }
      }
    },

    setIfAbsent(key, value, expiresAt) {
      return locked(key, "setIfAbsent", async (f) => {
        if (liveHeader(f)) return false;
        await writeEntry(dir, f, value, expiresAt, durability);
        return true;
      });
    },

    getVersioned(key): { entry: DriverEntry | undefined; version: KvVersion } {
      try {
        const e = readEntry(file(key));
        return e === undefined
          ? { entry: undefined, version: null }
          : { entry: entry(e), version: e.header.version };
      } catch (error) {
        throw fail("getVersioned", error);
      }
    },

    compareAndSet(key, expected, value, expiresAt) {
      return locked(key, "compareAndSet", async (f) => {
        const h = liveHeader(f);
        if (expected === null ? h !== undefined : h?.version !== expected) return false;
        return writeEntry(dir, f, value, expiresAt, durability);
      });
    },

    async close() {
      await sweeper?.stop();
    },
  };

  /** The header of a live entry; a damaged file counts as present (never silently overwritten by a conditional write). */
  function liveHeader(f: string) {
    const h = readHeader(f);
    return h !== undefined && live(h.expiresAt, Date.now()) ? h : undefined;
  }

  function readItem(key: string, values: boolean, now: number): DriverListPage["items"][number] | undefined {
    const f = file(key);
    try {
      if (values) {
        const e = readEntry(f);
        if (e === undefined || !live(e.header.expiresAt, now)) return undefined;
        return { key, value: e.value, expiresAt: e.header.expiresAt };
      }
      const h = readHeader(f);
      if (h === undefined || !live(h.expiresAt, now)) return undefined;
      return { key, expiresAt: h.expiresAt };
    } catch (error) {
      // A damaged file is skipped by listing (get() reports it): one bad file must not stop a listing.
      if (error instanceof KvCorruptError) return undefined;
      throw error;
    }
  }

  return driver;
}

async function inParallel<T>(
  items: T[],
  width: number,
  fn: (item: T) => Promise<unknown> | unknown,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
