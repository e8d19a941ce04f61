import { randomBytes } from "node:crypto";
import type { KvVersion } from "@kvsession/kv";
import { SessionBusyError, SessionConfigError } from "./errors.js";
import {
  isRecord,
  type Known,
  type Lease,
  type Read,
  type StoredRecord,
  type Written,
  withoutLease,
} from "./record.js";

/** How serialised mode holds a session (see `SessionsOptions.serialize`). */
export interface SerializeOptions {
  /** How long a lease lasts unless renewed; a holder that died is replaced after this. Default 5 s. */
  leaseMs?: number;
  /** How long a request waits for the session before a `SessionBusyError` (503 with Retry-After). Default 5 s. */
  waitMs?: number;
  /** Renewal stops after this long, so a request that never commits cannot hold a session for ever. Default 60 s. */
  maxHoldMs?: number;
}

export interface LeaseTimes {
  leaseMs: number;
  waitMs: number;
  maxHoldMs: number;
}

export function resolveLeaseTimes(o: SerializeOptions | true): LeaseTimes {
  const { leaseMs = 5_000, waitMs = 5_000, maxHoldMs = 60_000 } = o === true ? {} : o;
  for (const [k, v] of Object.entries({ leaseMs, waitMs, maxHoldMs }))
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new SessionConfigError(`serialize.${k} must be a positive integer of ms, got ${v}`);
  if (maxHoldMs < leaseMs) throw new SessionConfigError("serialize.maxHoldMs must be at least leaseMs");
  return { leaseMs, waitMs, maxHoldMs };
}

/** What the leases need from the session engine: its record I/O. */
export interface LeaseStore {
  read(handle: string): Promise<Read>;
  decode(handle: string, known: Known): Read;
  writeIf(handle: string, version: KvVersion, next: StoredRecord, expiresAt: number): Promise<Written>;
  expired(r: StoredRecord, now: number): boolean;
  deadline(r: StoredRecord): number;
}

/** A lease this request holds on one session record. */
export interface HeldLease {
  readonly token: string;
  /** The record as it was when the lease was taken (without the lease). */
  readonly rec: StoredRecord;
  /** The version of this lease's last write (taking, renewing, or the holder's own `save()`). */
  version: KvVersion;
  /** False once a renewal found the record taken over, or the hold limit passed. */
  held(): boolean;
  /** Waits for a renewal in flight, then stops renewing. */
  stop(): Promise<void>;
  /**
   * A lease for the next request of this session queued in this process, for the commit to write in
   * place of its own (the next request then holds the session without a write of its own); undefined
   * when no one is queued.
   */
  successor(): Lease | undefined;
  /** Ends this process's turn: the next local waiter goes (the store's lease ends with the commit's write). */
  release(): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A lease's token is a fence, not a secret: it only has to differ from every other holder's, in
 * this process and any other, so a random part per process and a counter do.
 */
const tokenHead = randomBytes(9).toString("base64url");
let tokenCount = 0;
const newToken = () => `${tokenHead}.${(++tokenCount).toString(36)}`;

/** A request's place in this process's line for one session. */
interface Turn {
  /** Lets the next request of the line go. */
  end(): void;
  /** Whether another request of the session has queued behind this one. */
  queued(): boolean;
}

/** How many sessions' last commits a process keeps (least recently used dropped first). */
const KNOWN_MAX = 10_000;

/**
 * Leases on session records, taken with the record's own compare-and-set: the lease lives inside
 * the record, so taking it changes the record's version, and a holder whose lease was taken over
 * (it paused past `leaseMs`) fails its commit's compare-and-set instead of overwriting — the record
 * is its own fence. Requests of one process queue locally, so only the head of the line polls the store,
 * and a commit with a request queued behind it writes that request's lease in place of its own, so
 * under one busy session each request costs one write to the store, not two.
 */
export function createLeases(io: LeaseStore, times: LeaseTimes) {
  /** Per session held here, the requests of this process waiting for it, in order. */
  const lines = new Map<string, Array<() => void>>();
  /**
   * Each session's last commit from this process. Taking the lease is a compare-and-set on the
   * record's version, and it succeeds only if the record is still exactly that commit, so a session
   * this process served last is taken in one write instead of a read and a write.
   */
  const known = new Map<string, Known>();
  /** Per session, the token of a lease a commit wrote for the next request queued here (`successor`). */
  const handed = new Map<string, string>();
  /** `successor`: the token of the lease the commit `k` wrote for the next request queued here. */
  function remember(handle: string, k: Known, successor?: string): void {
    known.delete(handle);
    known.set(handle, k);
    if (known.size > KNOWN_MAX) known.delete(known.keys().next().value as string);
    if (successor === undefined) handed.delete(handle);
    else handed.set(handle, successor);
  }

  /**
   * A lease handed to a request that then gave up waiting: no request here will commit it, so it is
   * written away rather than left to block other processes until it runs out.
   */
  async function giveBack(handle: string, token: string): Promise<void> {
    try {
      const last = known.get(handle);
      let r = last ? io.decode(handle, last) : await io.read(handle);
      for (let attempt = 0; attempt < 3; attempt++) {
        if (!isRecord(r.rec) || r.rec.lease?.token !== token) return;
        const rec = withoutLease(r.rec);
        const written = await io.writeIf(handle, r.version, rec, io.deadline(rec));
        if (written !== false) return remember(handle, written);
        r = await io.read(handle);
      }
    } catch {
      // The store is down: the lease runs out by itself.
    }
  }

  /** Waits for this process's earlier holders of the handle; resolves with our turn. */
  async function localTurn(handle: string, deadline: number, own: LeaseTimes): Promise<Turn> {
    let waiting = lines.get(handle);
    if (waiting === undefined) {
      waiting = [];
      lines.set(handle, waiting);
    } else {
      const queue = waiting;
      // Settled by whichever comes first: the turn (which stops the timer) or the timer (which leaves the line).
      const came = await new Promise<boolean>((resolve) => {
        const go = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(
          () => {
            queue.splice(queue.indexOf(go), 1);
            resolve(false);
          },
          Math.max(0, deadline - Date.now()),
        );
        queue.push(go);
      });
      if (!came) throw new SessionBusyError(Math.ceil(own.leaseMs / 1000));
    }
    const line = waiting;
    let ended = false;
    return {
      end() {
        if (ended) return;
        ended = true;
        const next = line.shift();
        if (next !== undefined) return next();
        lines.delete(handle);
        const token = handed.get(handle);
        if (token !== undefined) {
          handed.delete(handle);
          void giveBack(handle, token);
        }
      },
      queued: () => line.length > 0,
    };
  }

  /**
   * Takes the lease on `handle`'s record, waiting up to `waitMs` while another holder has it.
   * Undefined when there is no live record (nothing to serialise: a new session starts).
   * `own`: this request's timings (a route's), in place of the app's.
   */
  async function acquire(handle: string, own: LeaseTimes = times): Promise<HeldLease | undefined> {
    const deadline = Date.now() + own.waitMs;
    const turn = await localTurn(handle, deadline, own);
    try {
      let last = known.get(handle);
      // A lease the commit before us wrote for us (see `successor`).
      const passed = handed.get(handle);
      handed.delete(handle);
      for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
        const r = last ? io.decode(handle, last) : await io.read(handle);
        const now = Date.now();
        const ours = passed !== undefined && isRecord(r.rec) && r.rec.lease?.token === passed;
        // Only a successful compare-and-set proves the remembered commit current: anything else reads.
        if (last && !ours && (!isRecord(r.rec) || io.expired(r.rec, now) || r.rec.lease !== undefined)) {
          known.delete(handle);
          last = undefined;
          continue;
        }
        if (!isRecord(r.rec) || io.expired(r.rec, now)) {
          turn.end();
          return undefined;
        }
        const other = r.rec.lease;
        if (ours && last && other!.until - now > own.leaseMs / 3) {
          // Held from the commit's own write; should another writer have changed the record since, the
          // first compare-and-set fails and reads, as after a renewal.
          return hold(handle, passed, withoutLease(r.rec), last.version, now, turn, own);
        }
        if (other === undefined || other.until <= now || ours) {
          const token = newToken();
          const rec = withoutLease(r.rec);
          const lease: Lease = { token, until: now + own.leaseMs };
          // The lease first: a spread followed by a field it lacks builds a new hidden class on every
          // call, which made this record several times dearer to build and to encode.
          const written = await io.writeIf(handle, r.version, { lease, ...rec }, io.deadline(rec));
          if (written !== false) return hold(handle, token, rec, written.version, now, turn, own);
          if (last) {
            known.delete(handle);
            last = undefined;
          }
          continue;
        }
        if (now >= deadline) throw new SessionBusyError(Math.ceil((other.until - now) / 1000));
        await sleep(Math.min(pause, other.until - now, deadline - now) + 1);
      }
    } catch (err) {
      turn.end();
      throw err;
    }
  }

  function hold(
    handle: string,
    token: string,
    rec: StoredRecord,
    version: KvVersion,
    since: number,
    turn: Turn,
    times: LeaseTimes,
  ): HeldLease {
    let ok = true;
    let renewing: Promise<void> = Promise.resolve();
    const renew = async () => {
      if (Date.now() - since >= times.maxHoldMs) {
        ok = false;
        return;
      }
      try {
        const r = await io.read(handle);
        if (!isRecord(r.rec) || r.rec.lease?.token !== token) {
          ok = false;
          return;
        }
        const next = { ...r.rec, lease: { token, until: Date.now() + times.leaseMs } };
        // A lost race here is a write of this request's own session by a request not serialised: try again next time.
        const written = await io.writeIf(handle, r.version, next, io.deadline(r.rec));
        if (written !== false) held.version = written.version;
      } catch {
        // The store is down: the lease runs out by itself; the commit reports the outage.
      }
    };
    const timer = setInterval(
      () => {
        if (!ok) return clearInterval(timer);
        renewing = renewing.then(renew);
      },
      Math.max(1, Math.floor(times.leaseMs / 3)),
    );
    timer.unref();
    const held: HeldLease = {
      token,
      rec,
      version,
      held: () => ok,
      async stop() {
        clearInterval(timer);
        await renewing;
      },
      successor: () => (turn.queued() ? { token: newToken(), until: Date.now() + times.leaseMs } : undefined),
      release: turn.end,
    };
    return held;
  }

  return { acquire, remember };
}

export type Leases = ReturnType<typeof createLeases>;
