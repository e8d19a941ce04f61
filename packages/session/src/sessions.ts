import { type JsonValue, json, KvCodecError, type KvVersion } from "@kvsession/kv";
import { cookieValues, parseCookieHeader, serializeCookie } from "./cookie.js";
import { deriveKeys, hashId, newSessionId, secretBytes, signId, unsignId } from "./crypto.js";
import {
  SessionConfigError,
  SessionConflictError,
  SessionDataError,
  SessionError,
  SessionStateError,
  SessionStoreError,
} from "./errors.js";
import { type CookiePlan, cookiePlanner, resolveTimeouts } from "./options.js";
import {
  applyData,
  applyFlash,
  assertDataKey,
  type Changes,
  classify,
  DELETED,
  deadlineOf,
  isRecord,
  newChanges,
  noChanges,
  type StoredRecord,
} from "./record.js";
import type {
  CommitResult,
  OpenInput,
  Session,
  SessionData,
  Sessions,
  SessionsOptions,
  UserSessionInfo,
} from "./types.js";
import { createUserIndex } from "./user-index.js";

const codec = json<unknown>();
/** At most this many distinct signed IDs of one request are looked up (cookie tossing cannot multiply I/O). */
const MAX_CANDIDATES = 4;
/** How long the tombstone of a regenerated session stays: long enough for in-flight requests to see it. */
const TOMBSTONE_MS = 60_000;

/** Store I/O with every failure mapped onto the session error family. */
async function io<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SessionError) throw err;
    if (err instanceof KvCodecError)
      throw new SessionDataError(`cannot store the session: ${err.message}`, { cause: err });
    throw new SessionStoreError(operation, err);
  }
}

function encode(value: unknown): Uint8Array {
  try {
    return codec.encode(value);
  } catch (err) {
    throw new SessionDataError(`cannot store the session: ${(err as Error).message}`, { cause: err });
  }
}

const internals = new WeakMap<object, { handle(): Promise<string | undefined> }>();

/**
 * Server-side sessions on any `@kvsession/kv` store: the cookie carries only a
 * signed random ID, the store holds the data under a hash of that ID.
 *
 * @example
 * import { createMemoryStore } from "@kvsession/kv";
 * import { createSessions } from "@kvsession/session";
 *
 * const sessions = createSessions<{ cart: string[] }>({ store: createMemoryStore(), secrets: [process.env.SESSION_SECRET!] });
 * const session = sessions.open({ cookieHeader: req.headers.cookie, secure: true });
 * session.set("cart", [...((await session.get("cart")) ?? []), "apple"]);
 * const { setCookie, headers } = await session.commit();
 */
export function createSessions<D extends object = SessionData>(options: SessionsOptions): Sessions<D> {
  if (!options || typeof options.store?.withPrefix !== "function")
    throw new SessionConfigError("createSessions needs a @kvsession/kv store in options.store");
  const keys = deriveKeys(secretBytes(options.secrets), "cookie-signature");
  const t = resolveTimeouts(options);
  const planCookie = cookiePlanner(options);
  const ns = options.namespace ?? "sess";
  const maxRetries = options.maxRetries ?? 10;
  if (!Number.isInteger(maxRetries) || maxRetries < 1)
    throw new SessionConfigError("maxRetries must be an integer >= 1");
  const records = options.store.withPrefix(`${ns}:`);
  const index = createUserIndex(options.store.withPrefix(`${ns}-user:`));
  const cas = records.capabilities.compareAndSet;
  const sia = records.capabilities.setIfAbsent;
  const onCorrupt = options.onCorruptRecord;

  const expired = (r: StoredRecord, now: number) => now >= deadlineOf(r, t.idleMs, t.absoluteMs);

  /** Reads a record; a corrupt one counts as absent (never a crash, never adopted). */
  async function read(handle: string): Promise<{ rec: ReturnType<typeof classify>; version: KvVersion }> {
    const got = await io("load", async () => {
      if (cas) {
        const v = await records.getVersioned(handle);
        return { bytes: v.value, version: v.version };
      }
      return { bytes: await records.get(handle), version: null };
    });
    if (got.bytes === undefined) return { rec: undefined, version: null };
    let decoded: unknown;
    try {
      decoded = codec.decode(got.bytes);
    } catch (err) {
      onCorrupt?.(err);
      return { rec: undefined, version: got.version };
    }
    const rec = classify(decoded);
    if (rec === undefined)
      onCorrupt?.(new SessionDataError(`session record ${handle.slice(0, 8)}… has an unknown shape`));
    return { rec, version: got.version };
  }

  /** Writes `next` if the record is still at `version`; stores without CAS get a plain set (documented). */
  async function writeIf(
    handle: string,
    version: KvVersion,
    next: unknown,
    expiresAt: number,
  ): Promise<boolean> {
    const bytes = encode(next);
    return io("save", async () => {
      if (cas) return records.compareAndSet(handle, version, bytes, { expiresAt });
      await records.set(handle, bytes, { expiresAt });
      return true;
    });
  }

  async function create(handle: string, rec: StoredRecord): Promise<boolean> {
    const bytes = encode(rec);
    const expiresAt = deadlineOf(rec, t.idleMs, t.absoluteMs);
    return io("create", async () => {
      if (sia) return records.setIfAbsent(handle, bytes, { expiresAt });
      if (cas) return records.compareAndSet(handle, null, bytes, { expiresAt });
      await records.set(handle, bytes, { expiresAt });
      return true;
    });
  }

  function open(input: OpenInput = {}): Session<D> {
    const plan: CookiePlan = planCookie(input);
    let pairs: ReturnType<typeof parseCookieHeader> | undefined;
    let candidates: string[] | undefined;
    /** Verified IDs from the Cookie header, computed on first use (a request that never touches the session pays nothing). */
    const cookieIds = (): string[] => {
      if (candidates) return candidates;
      pairs = parseCookieHeader(input.cookieHeader);
      const seen = new Set<string>();
      for (const v of cookieValues(pairs, plan.name)) {
        const id = unsignId(keys, v);
        if (id !== undefined) seen.add(id);
        if (seen.size >= MAX_CANDIDATES) break;
      }
      candidates = [...seen];
      return candidates;
    };
    const sentCookie = () => {
      cookieIds();
      return cookieValues(pairs!, plan.name).length > 0;
    };

    let changes: Changes = newChanges();
    let loaded = false;
    let loading: Promise<void> | undefined;
    let id: string | undefined;
    let handle: string | undefined;
    let rec: StoredRecord | undefined;
    let version: KvVersion = null;
    /** The version in `version` is what the store held when `rec` was read (false after our own write). */
    let fresh = false;
    let touchWanted = false;
    let issueCookie = false;
    let state: "open" | "destroyed" | "gone" | "committed" = "open";
    let goneByRegenerate = false;

    function assertOpen(what: string): void {
      if (state === "committed")
        throw new SessionStateError(`${what} after commit(); the response headers are already out`);
      if (state === "destroyed")
        throw new SessionStateError(`${what} after destroy(); open a new session instead`);
    }

    async function loadFrom(ids: string[]): Promise<void> {
      const now = Date.now();
      const live: Array<{ id: string; handle: string; rec: StoredRecord; version: KvVersion }> = [];
      for (const cid of ids) {
        const h = hashId(cid);
        const r = await read(h);
        if (isRecord(r.rec) && !expired(r.rec, now))
          live.push({ id: cid, handle: h, rec: r.rec, version: r.version });
      }
      // Two different live sessions in one request means a tossed cookie: trust neither (fail closed).
      if (live.length === 1) {
        const l = live[0]!;
        id = l.id;
        handle = l.handle;
        rec = l.rec;
        version = l.version;
        fresh = true;
      } else {
        id = handle = rec = undefined;
        version = null;
      }
      loaded = true;
    }

    function load(): Promise<void> {
      if (loaded) return Promise.resolve();
      loading ??= loadFrom(cookieIds()).finally(() => {
        loading = undefined;
      });
      return loading;
    }

    /** The data as this request sees it: stored data with pending changes on top. */
    const view = (): SessionData => applyData(rec?.data ?? {}, changes.patch);

    function build(base: StoredRecord | undefined, now: number, c: Changes): StoredRecord {
      const next: StoredRecord = {
        data: applyData(base?.data ?? {}, c.patch),
        createdAt: base?.createdAt ?? now,
        lastSeenAt: now,
      };
      if (base?.userId !== undefined) next.userId = base.userId;
      if (base?.meta !== undefined) next.meta = base.meta;
      const flash = applyFlash(base?.flash, c);
      if (flash !== undefined) next.flash = flash;
      return next;
    }

    /** Applies pending changes to the current record with CAS, retrying on conflict; a vanished record stays gone. */
    async function persist(): Promise<"unchanged" | "saved" | "created" | "gone"> {
      await load();
      if (state === "gone") return "gone";
      const dirty = !noChanges(changes);
      if (rec === undefined || handle === undefined) {
        if (!dirty) return "unchanged";
        const now = Date.now();
        for (let attempt = 0; attempt < 3; attempt++) {
          const nid = newSessionId();
          const next = build(undefined, now, changes);
          if (await create(hashId(nid), next)) {
            id = nid;
            handle = hashId(nid);
            rec = next;
            fresh = false;
            changes = newChanges();
            issueCookie = true;
            return "created";
          }
        }
        throw new SessionConflictError(3);
      }
      const now = Date.now();
      if (!dirty && !touchWanted && now - rec.lastSeenAt < t.touchMs) return "unchanged";
      let base: StoredRecord | undefined = rec;
      let ver = version;
      let haveFresh = fresh;
      for (let attempt = 0; attempt < maxRetries; attempt++) {
        if (!haveFresh) {
          const r = await read(handle);
          if (!isRecord(r.rec) || expired(r.rec, Date.now())) {
            goneByRegenerate = r.rec !== undefined && !isRecord(r.rec);
            state = "gone";
            rec = undefined;
            return "gone";
          }
          base = r.rec;
          ver = r.version;
        }
        const next = build(base, Date.now(), changes);
        if (await writeIf(handle, ver, next, deadlineOf(next, t.idleMs, t.absoluteMs))) {
          rec = next;
          fresh = false;
          changes = newChanges();
          touchWanted = false;
          return "saved";
        }
        haveFresh = false;
      }
      throw new SessionConflictError(maxRetries);
    }

    /**
     * New ID with the current data (or none). The new record is created first, then
     * the old one is replaced by a tombstone with CAS: only one of two parallel
     * regenerations can win, and a write racing with us is either seen or refused.
     */
    async function rotate(
      keepData: boolean,
      user?: { userId: string; meta: JsonValue | undefined },
    ): Promise<void> {
      assertOpen("regenerate()");
      await load();
      if (state === "gone") throw new SessionConflictError(1);
      let base: StoredRecord | undefined = rec;
      let ver = version;
      let haveFresh = fresh;
      for (let attempt = 0; attempt < maxRetries; attempt++) {
        if (handle !== undefined && !haveFresh) {
          const r = await read(handle);
          if (!isRecord(r.rec) || expired(r.rec, Date.now())) {
            // Destroyed or regenerated by someone else meanwhile: never carry its data forward.
            state = "gone";
            goneByRegenerate = r.rec !== undefined && !isRecord(r.rec);
            rec = undefined;
            throw new SessionConflictError(attempt + 1);
          }
          base = r.rec;
          ver = r.version;
        }
        const now = Date.now();
        const kept = keepData ? build(base, now, changes) : build(undefined, now, newChanges());
        const next: StoredRecord = { ...kept, createdAt: now, lastSeenAt: now };
        const oldUser = base?.userId;
        delete next.userId;
        delete next.meta;
        if (user) {
          next.userId = user.userId;
          if (user.meta !== undefined) next.meta = user.meta;
        } else if (keepData && oldUser !== undefined) {
          next.userId = oldUser;
          if (base?.meta !== undefined) next.meta = base.meta;
        }
        const nid = newSessionId();
        const nh = hashId(nid);
        const expiresAt = deadlineOf(next, t.idleMs, t.absoluteMs);
        // Index first: a revokeUser running now either sees this entry or runs before the record exists.
        if (next.userId !== undefined)
          await io("index", () =>
            index.put(next.userId!, nh, { createdAt: now, meta: next.meta }, expiresAt),
          );
        if (!(await create(nh, next))) continue;
        if (handle !== undefined && base !== undefined) {
          const ok = await writeIf(handle, ver, { movedAt: now }, Math.min(now + TOMBSTONE_MS, expiresAt));
          if (!ok) {
            await io("regenerate", () => records.delete(nh));
            if (next.userId !== undefined) await io("index", () => index.remove(next.userId!, nh));
            haveFresh = false;
            continue;
          }
          if (oldUser !== undefined) await io("index", () => index.remove(oldUser, handle!));
        }
        id = nid;
        handle = nh;
        rec = next;
        version = null;
        fresh = false;
        changes = newChanges();
        issueCookie = true;
        return;
      }
      throw new SessionConflictError(maxRetries);
    }

    function cookieFor(value: string, maxAgeSec: number | undefined): string {
      return serializeCookie(plan.name, value, { ...plan.attrs, maxAge: maxAgeSec });
    }

    const session: Session<D> = {
      async get(key) {
        assertDataKey(key);
        const p = changes.patch.get(key);
        if (p !== undefined) return (p === DELETED ? undefined : p) as D[typeof key] | undefined;
        await load();
        return rec?.data[key] as D[typeof key] | undefined;
      },
      async has(key) {
        return (await session.get(key)) !== undefined;
      },
      async all() {
        await load();
        return view() as Partial<D>;
      },
      set(key, value) {
        assertOpen("set()");
        assertDataKey(key);
        changes.patch.set(key, value === undefined ? DELETED : (value as JsonValue));
      },
      delete(key) {
        assertOpen("delete()");
        assertDataKey(key);
        changes.patch.set(key, DELETED);
      },
      flash(type, message) {
        assertOpen("flash()");
        assertDataKey(type);
        const list = changes.flashAdd.get(type) ?? [];
        list.push(message);
        changes.flashAdd.set(type, list);
      },
      async flashes(type) {
        assertOpen("flashes()");
        assertDataKey(type);
        await load();
        const taken = changes.flashTaken.get(type) ?? 0;
        const stored = (rec?.flash?.[type] ?? []).slice(taken);
        const own = changes.flashAdd.get(type) ?? [];
        changes.flashAdd.delete(type);
        if (stored.length > 0) changes.flashTaken.set(type, taken + stored.length);
        return [...stored, ...own];
      },
      async regenerate(opts) {
        await rotate(opts?.keepData ?? true);
      },
      async bindUser(userId, meta) {
        if (typeof userId !== "string" || userId === "" || userId.length > 1024)
          throw new SessionDataError("userId must be a non-empty string of at most 1024 characters");
        await rotate(true, { userId, meta });
      },
      async userId() {
        await load();
        return rec?.userId;
      },
      async exists() {
        await load();
        return rec !== undefined;
      },
      async destroy() {
        assertOpen("destroy()");
        await load();
        if (handle !== undefined) {
          const h = handle;
          await io("destroy", () => records.delete(h));
          if (rec?.userId !== undefined) {
            const u = rec.userId;
            await io("index", () => index.remove(u, h));
          }
        }
        state = "destroyed";
        id = handle = rec = undefined;
        changes = newChanges();
      },
      async reload() {
        assertOpen("reload()");
        changes = newChanges();
        touchWanted = false;
        const wasLoaded = loaded;
        loaded = false;
        if (state === "gone") return;
        // Before the first load the cookie decides; afterwards the ID this session holds now.
        await loadFrom(id !== undefined ? [id] : wasLoaded ? [] : cookieIds());
      },
      touch() {
        assertOpen("touch()");
        touchWanted = true;
      },
      async save() {
        assertOpen("save()");
        await persist();
      },
      async commit(): Promise<CommitResult> {
        if (state === "committed") throw new SessionStateError("commit() called twice");
        const result: CommitResult = { setCookie: [], headers: {}, outcome: "untouched" };
        if (state === "destroyed") {
          state = "committed";
          if (sentCookie()) result.setCookie.push(cookieFor("", 0));
          result.headers["cache-control"] = "no-store";
          result.outcome = "destroyed";
          return result;
        }
        const idle = !loaded && noChanges(changes) && !touchWanted && !issueCookie;
        if (idle) {
          state = "committed";
          return result;
        }
        const outcome = await persist();
        const wasGone = state === "gone";
        state = "committed";
        result.outcome = outcome === "unchanged" && issueCookie ? "saved" : outcome;
        if (outcome !== "gone" && issueCookie && id !== undefined && rec !== undefined) {
          const maxAge = plan.persistent
            ? Math.ceil((rec.createdAt + t.absoluteMs - Date.now()) / 1000)
            : undefined;
          result.setCookie.push(cookieFor(signId(keys, id), maxAge));
        } else if ((wasGone && !goneByRegenerate) || (rec === undefined && sentCookie())) {
          // The cookie points at nothing (tampered, unknown, expired or destroyed elsewhere): clear it.
          result.setCookie.push(cookieFor("", 0));
        }
        if (result.setCookie.length > 0) result.headers["cache-control"] = "no-store";
        return result;
      },
    };
    internals.set(session, {
      async handle() {
        await load();
        return handle;
      },
    });
    return session;
  }

  const handleOf = async (s: Session<D> | string | undefined) =>
    typeof s === "string" ? s : s === undefined ? undefined : internals.get(s)?.handle();

  return {
    records,
    open,
    async listUserSessions(userId, opts) {
      const current = await handleOf(opts?.current);
      const entries = await io("list", () => index.list(userId));
      if (entries.length === 0) return [];
      const raw = await io("list", () => records.getMany(entries.map((e) => e.handle)));
      const now = Date.now();
      const out: UserSessionInfo[] = [];
      const stale: string[] = [];
      entries.forEach((e, i) => {
        const bytes = raw[i];
        let r: ReturnType<typeof classify>;
        try {
          r = bytes === undefined ? undefined : classify(codec.decode(bytes));
        } catch {
          r = undefined;
        }
        if (!isRecord(r) || r.userId !== userId || expired(r, now)) {
          stale.push(e.handle);
          return;
        }
        out.push({
          handle: e.handle,
          createdAt: r.createdAt,
          lastSeenAt: r.lastSeenAt,
          meta: r.meta,
          current: e.handle === current,
        });
      });
      // Pruning is housekeeping: a failure here must not hide the answer.
      await Promise.allSettled(stale.map((h) => index.remove(userId, h)));
      return out.sort((a, b) => b.lastSeenAt - a.lastSeenAt);
    },
    async revokeUser(userId, opts) {
      const keep = await handleOf(opts?.except);
      const entries = await io("list", () => index.list(userId));
      let n = 0;
      for (const e of entries) {
        if (e.handle === keep) continue;
        if (await io("revoke", () => records.delete(e.handle))) n++;
        await io("revoke", () => index.remove(userId, e.handle));
      }
      return n;
    },
    async revokeSession(userId, handle) {
      if (!/^[A-Za-z0-9_-]{43}$/.test(handle)) return false;
      if (!(await io("revoke", () => index.has(userId, handle)))) return false;
      const deleted = await io("revoke", () => records.delete(handle));
      await io("revoke", () => index.remove(userId, handle));
      return deleted;
    },
    async revokeAll() {
      await io("revoke", () => records.clear());
      await io("revoke", () => options.store.withPrefix(`${ns}-user:`).clear());
    },
  };
}
