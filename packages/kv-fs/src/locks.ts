import { randomBytes } from "node:crypto";
import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  readlinkSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { KvTimeoutError } from "@kvsession/kv";

const HOST = hostname();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The process a lock file names, as far as another process of this host can check it. Every field
 * but pid and host is optional: a platform without /proc leaves them out, and the checks that need
 * them are skipped.
 */
export interface Holder {
  pid: number;
  host: string;
  /** The kernel's boot id: a lock written before the host last booted has no live holder. */
  boot?: string | undefined;
  /** The pid namespace: a pid can be checked only from inside its own namespace. */
  ns?: string | undefined;
  /** The process's start time since boot: tells the process now running under a pid from an earlier one. */
  start?: string | undefined;
}

/** This process's start time from /proc, or undefined where there is none (or the pid is gone). */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (second field) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const start = fields[19];
    return start !== undefined && /^[0-9]+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

function readProc<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

let self: Holder | undefined;
/**
 * This process. Worker threads share it (they share the pid and /proc/self), so a lock of another
 * thread looks exactly like one of our own: which is why a holder is never judged by its pid alone.
 */
export function thisProcess(): Holder {
  self ??= {
    pid: process.pid,
    host: HOST,
    boot: readProc(
      () => /^[0-9a-f-]+$/.exec(readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim())?.[0],
    ),
    ns: readProc(() => /\[([0-9]+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1]),
    start: startOf(process.pid),
  };
  return self;
}

/** The content of a lock file: pid and host first, so the holder's own tools (and older versions) read it as before. */
export function holderLine(h: Holder, token: string): string {
  return `${h.pid} ${h.host} ${token} ${h.boot ?? "-"} ${h.ns ?? "-"} ${h.start ?? "-"}`;
}

function parseHolder(content: string): Holder | undefined {
  const f = content.split(" ");
  if (f.length !== 3 && f.length !== 6) return undefined;
  const pid = Number(f[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !f[1]) return undefined;
  const opt = (s: string | undefined) => (s === undefined || s === "-" ? undefined : s);
  return { pid, host: f[1], boot: opt(f[3]), ns: opt(f[4]), start: opt(f[5]) };
}

/**
 * A holder refreshes its lock file's time while it holds it, so a lock whose holder cannot be
 * checked (another pid namespace, a thread of a live process that was terminated) is known to be
 * abandoned once it is older than this. Far longer than any single write holds a lock.
 */
export const ABANDONED_LOCK_MS = 60_000;
const REFRESH_MS = ABANDONED_LOCK_MS / 6;

/**
 * A holder writes its line right after creating the lock file, so an empty (or unreadable) one
 * older than this was left by a process killed between the two (seen: SIGKILL during a write storm
 * left one, and every later write to that key timed out).
 */
const UNWRITTEN_LOCK_MS = 2000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The holder is certainly gone: its pid is free, or now belongs to a process started after it. */
function gone(h: Holder, me: Holder): boolean {
  if (h.pid === me.pid) return h.start !== undefined && me.start !== undefined && h.start !== me.start;
  if (!alive(h.pid)) return true;
  if (h.start === undefined) return false;
  const now = startOf(h.pid);
  return now !== undefined && now !== h.start;
}

/**
 * Whether a lock file's holder is known to be gone. Another host's lock is never judged (its pids
 * and clocks mean nothing here). On this host: a lock from before the last boot is gone; a holder in
 * our pid namespace is gone when its pid is free or reused; otherwise (a live pid, which may be a
 * thread of ours or of another process, or a pid of another namespace) only age can tell, because a
 * live holder keeps its lock fresh.
 */
function stale(lockPath: string, content: string): boolean {
  let age: number;
  try {
    age = Date.now() - statSync(lockPath).mtimeMs;
  } catch {
    return false; // released meanwhile: the caller retries
  }
  const h = parseHolder(content);
  if (h === undefined) return age > UNWRITTEN_LOCK_MS;
  if (h.host !== HOST) return false;
  const me = thisProcess();
  if (h.boot !== undefined && me.boot !== undefined && h.boot !== me.boot) return true;
  if (h.ns === me.ns && gone(h, me)) return true;
  return age > ABANDONED_LOCK_MS;
}

/**
 * Lock files held by this copy of the module, by path, and the line each was written with. Only
 * an in-process queue: other threads load their own copy of the module and meet this one through
 * the lock files alone.
 */
const held = new Map<string, Promise<void>>();
const owned = new Map<string, string>();
let refresher: ReturnType<typeof setInterval> | undefined;

/** Touches every lock file this module holds, so none looks abandoned while its holder works. */
export function refreshHeld(): void {
  const now = new Date();
  for (const [path, line] of owned) {
    try {
      if (readFileSync(path, "utf8") === line) utimesSync(path, now, now);
    } catch {}
  }
}

function own(path: string, line: string): void {
  owned.set(path, line);
  refresher ??= setInterval(refreshHeld, REFRESH_MS).unref();
}

function disown(path: string): void {
  owned.delete(path);
  if (owned.size === 0 && refresher !== undefined) {
    clearInterval(refresher);
    refresher = undefined;
  }
}

/**
 * Runs `fn` holding the lock `<file>.lock`, exclusive across the threads and processes of this
 * host: an `O_CREAT|O_EXCL` create of the lock file, which only one holder can win. A lock left by
 * a holder that died is recovered (see `stale`): it is renamed to a unique name and checked to
 * still be the stale one before it is deleted, so a lock taken meanwhile by a live holder is put
 * back instead of being dropped.
 */
export async function withLock<T>(
  lockPath: string,
  timeoutMs: number,
  makeDirs: () => void,
  fn: () => Promise<T> | T,
): Promise<T> {
  // In-process queue first: only one of this module's own operations ever competes for the file.
  const prev = held.get(lockPath);
  let release!: () => void;
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const chained = prev ? prev.then(() => mine) : mine;
  held.set(lockPath, chained);
  try {
    if (prev) await prev;
    const line = await acquire(lockPath, timeoutMs, makeDirs);
    own(lockPath, line);
    try {
      return await fn();
    } finally {
      disown(lockPath);
      releaseFile(lockPath, line);
    }
  } finally {
    release();
    if (held.get(lockPath) === chained) held.delete(lockPath);
  }
}

async function acquire(lockPath: string, timeoutMs: number, makeDirs: () => void): Promise<string> {
  // A token per acquisition: no two holders, even threads of one process, ever write the same line.
  const line = holderLine(thisProcess(), randomBytes(8).toString("hex"));
  const deadline = Date.now() + timeoutMs;
  let wait = 1;
  let madeDirs = false;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx");
      try {
        writeSync(fd, line);
      } finally {
        closeSync(fd);
      }
      return line;
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
        `kv-fs could not lock ${lockPath} within ${timeoutMs} ms: held by "${content}" (pid, host, token, boot id, pid namespace, start time); if that process is gone (on another host), delete the file`,
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

function releaseFile(lockPath: string, line: string): void {
  try {
    // Never delete a lock that is not ours (ours was broken by mistake and retaken).
    if (readFileSync(lockPath, "utf8") === line) unlinkSync(lockPath);
  } catch {}
}
