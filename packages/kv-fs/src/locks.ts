import { randomBytes } from "node:crypto";
import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { KvTimeoutError } from "@kvsession/kv";

const HOST = hostname();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Locks held by this process, by lock-file path. Module-wide rather than per
 * store, so two stores on one directory in one process queue for each other
 * instead of spinning on the file, and so a lock file carrying this process's
 * pid that is not in here is known to be a leftover of an earlier process that
 * had the same pid (containers restart as pid 1).
 */
const held = new Map<string, Promise<void>>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A holder writes its token right after creating the lock file, so an empty one
 * older than this was left by a process killed between the two (seen: SIGKILL
 * during a write storm left one, and every later write to that key timed out).
 */
const EMPTY_LOCK_STALE_MS = 2000;

/** A lock file whose holder is known to be gone: a dead pid on this host, our pid but not held here, or empty for long. */
function stale(lockPath: string, content: string): boolean {
  if (content === "") {
    try {
      return Date.now() - statSync(lockPath).mtimeMs > EMPTY_LOCK_STALE_MS;
    } catch {
      return false; // released meanwhile: the caller retries
    }
  }
  const [pid, host] = content.split(" ");
  if (host !== HOST) return false; // another host: we cannot tell, so never break it
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return true; // garbage: no holder could have written it
  return n === process.pid ? true : !alive(n);
}

/**
 * Runs `fn` holding the lock `<file>.lock`, exclusive across the processes of
 * this host: an `O_CREAT|O_EXCL` create of the lock file, which only one
 * process can win. A lock left by a killed process is recovered once its pid
 * is gone: it is renamed to a unique name and checked to still be the stale
 * one before it is deleted, so a lock taken meanwhile by a live process is put
 * back instead of being dropped.
 */
export async function withLock<T>(
  lockPath: string,
  timeoutMs: number,
  makeDirs: () => void,
  fn: () => Promise<T> | T,
): Promise<T> {
  // In-process queue first: only one of our own operations ever competes for the file.
  const prev = held.get(lockPath);
  let release!: () => void;
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const chained = prev ? prev.then(() => mine) : mine;
  held.set(lockPath, chained);
  try {
    if (prev) await prev;
    const token = await acquire(lockPath, timeoutMs, makeDirs);
    try {
      return await fn();
    } finally {
      releaseFile(lockPath, token);
    }
  } finally {
    release();
    if (held.get(lockPath) === chained) held.delete(lockPath);
  }
}

async function acquire(lockPath: string, timeoutMs: number, makeDirs: () => void): Promise<string> {
  const token = `${process.pid} ${HOST} ${randomBytes(8).toString("hex")}`;
  const deadline = Date.now() + timeoutMs;
  let wait = 1;
  let madeDirs = false;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx");
      try {
        writeSync(fd, token);
      } finally {
        closeSync(fd);
      }
      return token;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && !madeDirs) {
        // First write into this shard (or a long key's segment directory).
        makeDirs();
        madeDirs = true;
        continue;
      }
      if (code !== "EEXIST") throw e;
    }
    let content: string;
    try {
      content = readFileSync(lockPath, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue; // released meanwhile
      throw e;
    }
    if (stale(lockPath, content)) {
      breakStale(lockPath, content);
      continue;
    }
    if (Date.now() >= deadline)
      throw new KvTimeoutError(
        `kv-fs could not lock ${lockPath} within ${timeoutMs} ms: held by "${content}"; if that process is gone (on another host), delete the file`,
      );
    await sleep(wait);
    wait = Math.min(wait * 2, 20);
  }
}

function breakStale(lockPath: string, content: string): void {
  const tomb = `${lockPath}.${randomBytes(6).toString("hex")}.stale`;
  try {
    renameSync(lockPath, tomb);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return; // someone else broke or released it
    throw e;
  }
  let moved = "";
  try {
    moved = readFileSync(tomb, "utf8");
  } catch {}
  if (moved !== content) {
    // We took a live lock another breaker's successor had just created: give it back.
    try {
      linkSync(tomb, lockPath);
    } catch {}
  }
  try {
    unlinkSync(tomb);
  } catch {}
}

function releaseFile(lockPath: string, token: string): void {
  try {
    // Never delete a lock that is not ours (ours was broken by mistake and retaken).
    if (readFileSync(lockPath, "utf8") === token) unlinkSync(lockPath);
  } catch {}
}
