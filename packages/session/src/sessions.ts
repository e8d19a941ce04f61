import {
  type JsonValue,
  json,
  KvCodecError,
  type KvStore,
  KvValueTooLargeError,
  type KvVersion,
} from "@kvsession/kv";
import { cookieValuesIn, serializeCookie } from "./cookie.js";
import { deriveKeys, hashId, newSessionId, secretBytes } from "./crypto.js";
import {
  SessionConfigError,
  SessionConflictError,
  SessionDataError,
  SessionError,
  SessionStateError,
  SessionStoreError,
} from "./errors.js";
import { createGroupWriter } from "./group-write.js";
import { createLeases, type HeldLease, type Leases, type LeaseTimes, resolveLeaseTimes } from "./lease.js";
import { createLegacy, type Legacy } from "./legacy.js";
import {
  type CookiePlan,
  type CookiePlanner,
  cookieMaxAgeSec,
  cookiePlanner,
  resolveTimeouts,
  type Timeouts,
} from "./options.js";
import {
  applyCookieMaxAge,
  applyData,
  applyFlash,
  type Changes,
  classify,
  deadlineOf,
  isRecord,
  type Known,
  type Read,
  type StoredRecord,
  type Tombstone,
  type Written,
  withoutLease,
} from "./record.js";
import { RequestSession } from "./request-session.js";
import type {
  CommitResult,
  OpenInput,
  Session,
  SessionData,
  Sessions,
  SessionsOptions,
  UserSessionInfo,
} from "./types.js";
import { createUserIndex, type UserIndex } from "./user-index.js";
import { createVerifiedIds, type VerifiedIds } from "./verified-ids.js";

const codec = json<unknown>();
const noop = () => {};
/** At most this many distinct signed IDs of one request are looked up (cookie tossing cannot multiply I/O). */
const MAX_CANDIDATES = 4;
/** How long the tombstone of a regenerated session stays: long enough for in-flight requests to see it. */
const TOMBSTONE_MS = 60_000;

/** Store I/O with every failure mapped onto the session error family. */
async function io<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw storeError(operation, err);
  }
}

/**
 * Maps a store failure onto the session error family. What the store refuses for its content
 * (a codec error, a record over `maxValueBytes`) is a data error: retrying it can never succeed,
 * so it must not look like an outage (503).
 */
function storeError(operation: string, err: unknown): Error {
  if (err instanceof SessionError) return err;
  if (err instanceof KvCodecError || err instanceof KvValueTooLargeError)
    return new SessionDataError(`cannot store the session: ${err.message}`, { cause: err });
  return new SessionStoreError(operation, err);
}

/**
 * Serialises a record whose every part is already checked: values from the store
 * passed the codec's decode, values from the app passed `checkValue` in this commit.
 * Re-walking the whole record on every save would cost more than the rest of the cycle.
 */
function encode(value: unknown): Uint8Array {
  // Buffer.from carves small records from Node's pool (TextEncoder allocates an ArrayBuffer each time).
  // The bytes only travel to the store, which copies or sends them.
  return Buffer.from(JSON.stringify(value), "utf8");
}

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
  const secrets = secretBytes(options.secrets);
  const ids = createVerifiedIds(deriveKeys(secrets, "cookie-signature"));
  const t = resolveTimeouts(options);
  const planCookie = cookiePlanner(options);
  const ns = options.namespace ?? "sess";
  const maxRetries = options.maxRetries ?? 10;
  if (!Number.isInteger(maxRetries) || maxRetries < 1)
    throw new SessionConfigError("maxRetries must be an integer >= 1");
  const records = options.store.withPrefix(`${ns}:`);
  const index = createUserIndex(options.store.withPrefix(`${ns}-user:`), deriveKeys(secrets, "user-index"));
  const maxPerUser = options.maxSessionsPerUser ?? 100;
  if (!Number.isSafeInteger(maxPerUser) || maxPerUser < 1)
    throw new SessionConfigError("maxSessionsPerUser must be an integer >= 1");
  const cas = records.capabilities.compareAndSet;
  const sia = records.capabilities.setIfAbsent;
  const serialize = options.serialize ?? false;
  if (serialize !== false && !cas)
    throw new SessionConfigError(
      `serialize needs a store with compare-and-set; ${records.name} has none (use memory, SQLite, fs, Redis or PostgreSQL)`,
    );
  const onCorrupt = options.onCorruptRecord;

  const expired = (r: StoredRecord, now: number) => now >= deadlineOf(r, t.idleMs, t.absoluteMs);

  function decodeRead(handle: string, bytes: Uint8Array | undefined, version: KvVersion): Read {
    if (bytes === undefined) return { rec: undefined, version: null };
    let decoded: unknown;
    try {
      decoded = codec.decode(bytes);
    } catch (err) {
      onCorrupt?.(err);
      return { rec: undefined, version };
    }
    const rec = classify(decoded);
    if (rec === undefined)
      onCorrupt?.(new SessionDataError(`session record ${handle.slice(0, 8)}… has an unknown shape`));
    return { rec, version };
  }
  const decode = (handle: string, known: Known) => decodeRead(handle, known.bytes, known.version);
  const loadFailed = (err: unknown): never => {
    throw storeError("load", err);
  };

  /** Reads a record; a corrupt one counts as absent (never a crash, never adopted). Promise chains, not async: this is the hot path. */
  function read(handle: string): Promise<Read> {
    try {
      if (cas)
        return records.getVersioned(handle).then((v) => decodeRead(handle, v.value, v.version), loadFailed);
      return records.get(handle).then((b) => decodeRead(handle, b, null), loadFailed);
    } catch (err) {
      return Promise.reject(storeError("load", err));
    }
  }

  /**
   * Writes `next` if the record is still at `version`: what was written, or false. Stores
   * without CAS get a plain set (documented) and answer the version null, which matches nothing.
   */
  async function writeIf(
    handle: string,
    version: KvVersion,
    next: unknown,
    expiresAt: number,
  ): Promise<Written> {
    const bytes = encode(next);
    try {
      if (cas) {
        const written = await records.compareAndSet(handle, version, bytes, { expiresAt });
        return written === false ? false : { bytes, version: written };
      }
      await records.set(handle, bytes, { expiresAt });
      return { bytes, version: null };
    } catch (err) {
      throw storeError("save", err);
    }
  }

  async function create(handle: string, rec: StoredRecord): Promise<boolean> {
    const bytes = encode(rec);
    const expiresAt = deadlineOf(rec, t.idleMs, t.absoluteMs);
    return io("create", async () => {
      if (sia) return records.setIfAbsent(handle, bytes, { expiresAt });
      if (cas) return (await records.compareAndSet(handle, null, bytes, { expiresAt })) !== false;
      await records.set(handle, bytes, { expiresAt });
      return true;
    });
  }

  /** The user's live sessions, page by page; stale index entries are pruned on the way. */
  async function* liveSessions(userId: string): AsyncGenerator<Array<{ handle: string; rec: StoredRecord }>> {
    for await (const page of index.pages(userId)) {
      const raw = await records.getMany(page.map((e) => e.handle));
      const now = Date.now();
      const live: Array<{ handle: string; rec: StoredRecord }> = [];
      const stale: string[] = [];
      page.forEach((e, i) => {
        const bytes = raw[i];
        let r: ReturnType<typeof classify>;
        try {
          r = bytes === undefined ? undefined : classify(codec.decode(bytes));
        } catch {
          r = undefined;
        }
        if (isRecord(r) && r.userId === userId && !expired(r, now)) live.push({ handle: e.handle, rec: r });
        else stale.push(e.handle);
      });
      // Pruning is housekeeping: a failure here must not hide the answer.
      if (stale.length > 0) await index.removeMany(userId, stale).catch(noop);
      yield live;
    }
  }

  /** Ends the user's least recently used sessions beyond `maxSessionsPerUser`, never `keep`. */
  async function enforceLimit(userId: string, keep: string): Promise<void> {
    const all: Array<{ handle: string; lastSeenAt: number }> = [];
    for await (const page of liveSessions(userId))
      for (const s of page) all.push({ handle: s.handle, lastSeenAt: s.rec.lastSeenAt });
    if (all.length <= maxPerUser) return;
    const evict = all
      .filter((s) => s.handle !== keep)
      .sort((a, b) => a.lastSeenAt - b.lastSeenAt)
      .slice(0, all.length - maxPerUser)
      .map((s) => s.handle);
    await records.deleteMany(evict);
    await index.removeMany(userId, evict);
  }

  const leaseTimes = resolveLeaseTimes(serialize === false ? true : serialize);
  const leases = cas
    ? createLeases(
        { read, decode, writeIf, expired, deadline: (r) => deadlineOf(r, t.idleMs, t.absoluteMs) },
        leaseTimes,
      )
    : undefined;

  const engine: Engine = {
    legacy: options.legacy && createLegacy(options.legacy),
    serialize: serialize !== false,
    leases,
    leaseMs: leaseTimes.leaseMs,
    leaseTimes,
    ids,
    t,
    maxRetries,
    records,
    index,
    enforceLimit,
    planCookie,
    read,
    decode,
    writeIf,
    create,
    expired,
    writeGroup: createGroupWriter<GroupWriter, Known>(
      (handle, group, last) => ServerSession.flush(engine, handle, group, last),
      records.capabilities.settlesInTurn,
    ),
  };

  function open(input: OpenInput = {}): Session<D> {
    return new ServerSession<D>(engine, input);
  }

  const handleOf = async (s: Session<D> | string | undefined) =>
    typeof s === "string" ? s : s instanceof ServerSession ? s.handle() : undefined;

  return {
    records,
    serialized: serialize !== false,
    open,
    async listUserSessions(userId, opts) {
      const current = await handleOf(opts?.current);
      const out: UserSessionInfo[] = [];
      await io("list", async () => {
        for await (const page of liveSessions(userId))
          for (const { handle, rec } of page)
            out.push({
              handle,
              createdAt: rec.createdAt,
              lastSeenAt: rec.lastSeenAt,
              meta: rec.meta,
              current: handle === current,
            });
      });
      return out.sort((a, b) => b.lastSeenAt - a.lastSeenAt);
    },
    async revokeUser(userId, opts) {
      const keep = await handleOf(opts?.except);
      // First the not-before time: a login still in flight reads it once its record exists and
      // ends itself, so none can slip past the walk below (which sees every entry filed before it).
      const at = Date.now() + 1;
      await io("revoke", async () =>
        index.setNotBefore(userId, Math.max(at, await index.notBefore(userId)), at + t.absoluteMs),
      );
      let n = 0;
      await io("revoke", async () => {
        for await (const page of index.pages(userId)) {
          const handles = page.map((e) => e.handle).filter((h) => h !== keep);
          if (handles.length === 0) continue;
          n += (await records.deleteMany(handles)).filter(Boolean).length;
          await index.removeMany(userId, handles);
        }
      });
      return n;
    },
    async revokeSession(userId, handle) {
      if (!/^[A-Za-z0-9_-]{43}$/.test(handle)) return false;
      // The record says whose it is: revocation works whatever state the index is in.
      const r = await read(handle);
      if (!isRecord(r.rec) || r.rec.userId !== userId) return false;
      const deleted = await io("revoke", () => records.delete(handle));
      await io("revoke", () => index.remove(userId, handle));
      // A session past its deadline had already ended, whatever the store still held.
      return deleted && !expired(r.rec, Date.now());
    },
    async revokeAll() {
      await io("revoke", () => records.clear());
      await io("revoke", () => options.store.withPrefix(`${ns}-user:`).clear());
    },
  };
}

/** One request waiting for its changes to be written with its group. */
interface GroupWriter {
  session: ServerSession<object>;
  resolve(outcome: "saved" | "gone"): void;
  reject(err: unknown): void;
}

/** What every request of one `createSessions` shares: configuration and store access. */
interface Engine {
  /** Switching from express-session or @fastify/session (`SessionsOptions.legacy`). */
  legacy: Legacy | undefined;
  /** The app's default for serialised mode. */
  serialize: boolean;
  /** Undefined when the store has no compare-and-set. */
  leases: Leases | undefined;
  leaseMs: number;
  leaseTimes: LeaseTimes;
  ids: VerifiedIds;
  t: Timeouts;
  maxRetries: number;
  records: KvStore;
  index: UserIndex;
  enforceLimit(userId: string, keep: string): Promise<void>;
  planCookie: CookiePlanner;
  read(handle: string): Promise<Read>;
  /** Decodes what this process wrote, as `read` decodes what it reads. */
  decode(handle: string, known: Known): Read;
  writeIf(handle: string, version: KvVersion, next: unknown, expiresAt: number): Promise<Written>;
  create(handle: string, rec: StoredRecord): Promise<boolean>;
  expired(r: StoredRecord, now: number): boolean;
  /** Queues a write of one request's changes; see `createGroupWriter`. */
  writeGroup(handle: string, writer: GroupWriter): void;
}

/**
 * One request's server-side session: loads the record the signed cookie points at, and writes
 * this request's changes as a compare-and-set patch on top of whatever the store holds then.
 */
class ServerSession<D extends object> extends RequestSession<D> {
  readonly #e: Engine;
  readonly #input: OpenInput;
  readonly #plan: CookiePlan;
  /** Values sent under our cookie name (well-formed or not). */
  #sent: string[] | undefined;
  #candidates: string[] | undefined;
  /** IDs whose cookie was signed with an older secret: re-signed with the current one at commit. */
  #stale: string[] | undefined;
  #id: string | undefined;
  #handle: string | undefined;
  #rec: StoredRecord | undefined;
  #version: KvVersion = null;
  /** `#version` is what the store held when `#rec` was read (false after our own write). */
  #fresh = false;
  #issueCookie = false;
  #goneByRegenerate = false;
  /** Serialised mode: load → commit run while holding the record's lease. */
  readonly #serial: boolean;
  /** This request's lease timings: the app's, or the route's (`OpenInput.serialize`). */
  readonly #times: LeaseTimes;
  #lease: HeldLease | undefined;

  constructor(engine: Engine, input: OpenInput) {
    super();
    this.#e = engine;
    this.#input = input;
    this.#plan = engine.planCookie(input);
    const s = input.serialize;
    this.#serial = s === undefined ? engine.serialize : s !== false;
    this.#times = typeof s === "object" && s !== null ? resolveLeaseTimes(s) : engine.leaseTimes;
    if (this.#serial && engine.leases === undefined)
      throw new SessionConfigError("serialize needs a store with compare-and-set; this store has none");
  }

  /** Takes the lease on a record found live, then works on the record as the lease found it. */
  async #acquire(found: { id: string; handle: string }): Promise<void> {
    const lease = await this.#e.leases!.acquire(found.handle, this.#times);
    this.#lease = lease;
    this.#adopt(lease && { id: found.id, handle: found.handle, rec: lease.rec, version: lease.version });
  }

  /** Stops renewing and lets this process's next request of the session go. */
  async #dropLease(): Promise<void> {
    const lease = this.#lease;
    if (lease === undefined) return;
    this.#lease = undefined;
    await lease.stop();
    lease.release();
  }

  protected view(): StoredRecord | undefined {
    return this.#rec;
  }

  protected handleNow(): string | undefined {
    return this.#handle;
  }

  protected absoluteMs(): number {
    return this.#e.t.absoluteMs;
  }

  /** Verified IDs from the Cookie header, computed on first use (a request that never touches the session pays nothing). */
  #cookieIds(): string[] {
    if (this.#candidates) return this.#candidates;
    this.#sent = cookieValuesIn(this.#input.cookieHeader, this.#plan.name);
    const ids: string[] = [];
    for (const v of this.#sent) {
      const id = this.#e.ids.verify(v);
      if (id !== undefined && !ids.includes(id)) {
        ids.push(id);
        if (this.#e.ids.stale(v)) {
          this.#stale ??= [];
          this.#stale.push(id);
        }
      }
      if (ids.length >= MAX_CANDIDATES) break;
    }
    this.#candidates = ids;
    return ids;
  }

  #sentCookie(): boolean {
    this.#cookieIds();
    return this.#sent!.length > 0;
  }

  protected loadNow(): Promise<void> {
    const loading = this.#loadFrom(this.#cookieIds());
    if (this.#e.legacy === undefined) return loading;
    return loading.then(() => (this.#rec === undefined ? this.#migrate(this.#e.legacy!) : undefined));
  }

  /** A valid cookie of the old library and no session of ours: the old session becomes ours, once. */
  async #migrate(legacy: Legacy): Promise<void> {
    const sid = legacy.sidIn(this.#input.cookieHeader);
    if (sid === undefined) return;
    const old = await legacy.read(sid);
    if (old === undefined) return;
    const e = this.#e;
    const now = Date.now();
    const rec: StoredRecord = { data: old.data, createdAt: now, lastSeenAt: now };
    const uid = old.userId;
    for (let attempt = 0; attempt < 3; attempt++) {
      const nid = newSessionId();
      const nh = hashId(nid);
      if (uid !== undefined) {
        rec.userId = uid;
        rec.ix = e.index.generation;
        await io("index", () => e.index.put(uid, nh, { createdAt: now }, now + e.t.absoluteMs));
      }
      if (!(await e.create(nh, rec))) continue;
      // Deleted only once ours exists: a failure before leaves the old session to try again.
      await legacy.destroy(sid);
      this.#id = nid;
      this.#handle = nh;
      this.#rec = rec;
      this.#version = null;
      this.#fresh = false;
      this.#issueCookie = true;
      return;
    }
    throw new SessionConflictError(3);
  }

  protected async reloadNow(): Promise<void> {
    const wasLoaded = this.loaded;
    if (this.state === "gone") return;
    const lease = this.#lease;
    if (lease !== undefined && this.#handle !== undefined) {
      // Holding the lease: read the record again, still ours, rather than queue behind ourselves.
      const r = await this.#e.read(this.#handle);
      if (!isRecord(r.rec) || r.rec.lease?.token !== lease.token) throw this.#lost();
      this.#rec = withoutLease(r.rec);
      this.#fresh = false;
      return;
    }
    this.loaded = false;
    // Before the first load the cookie decides; afterwards the ID this session holds now.
    await this.#loadFrom(this.#id !== undefined ? [this.#id] : wasLoaded ? [] : this.#cookieIds());
  }

  #loadFrom(ids: string[]): Promise<void> {
    if (ids.length === 0) {
      this.#adopt(undefined);
      return Promise.resolve();
    }
    if (ids.length === 1) {
      const id = ids[0]!;
      const h = this.#e.ids.handle(id);
      if (this.#serial) return this.#acquire({ id, handle: h });
      return this.#e.read(h).then((r) => {
        const live = isRecord(r.rec) && !this.#e.expired(r.rec, Date.now());
        this.#adopt(live ? { id, handle: h, rec: r.rec as StoredRecord, version: r.version } : undefined);
      });
    }
    return this.#loadMany(ids);
  }

  #adopt(found: { id: string; handle: string; rec: StoredRecord; version: KvVersion } | undefined): void {
    if (found) {
      this.#id = found.id;
      this.#handle = found.handle;
      this.#rec = found.rec;
      this.#version = found.version;
      this.#fresh = true;
      // Re-signing on use lets an old secret be dropped once the idle timeout has passed.
      if (this.#stale?.includes(found.id)) this.#issueCookie = true;
    } else {
      this.#id = this.#handle = this.#rec = undefined;
      this.#version = null;
    }
    this.loaded = true;
  }

  async #loadMany(ids: string[]): Promise<void> {
    const now = Date.now();
    let found: { id: string; handle: string; rec: StoredRecord; version: KvVersion } | undefined;
    let live = 0;
    for (const cid of ids) {
      const h = this.#e.ids.handle(cid);
      const r = await this.#e.read(h);
      if (isRecord(r.rec) && !this.#e.expired(r.rec, now)) {
        live++;
        found = { id: cid, handle: h, rec: r.rec, version: r.version };
      }
    }
    // Two different live sessions in one request means a tossed cookie: trust neither (fail closed).
    if (live === 1 && this.#serial) return this.#acquire(found!);
    this.#adopt(live === 1 ? found : undefined);
  }

  #build(base: StoredRecord | undefined, now: number, c: Changes | undefined): StoredRecord {
    const next: StoredRecord = {
      data: c ? applyData(base?.data ?? {}, c.patch) : (base?.data ?? {}),
      createdAt: base?.createdAt ?? now,
      lastSeenAt: now,
    };
    if (base?.userId !== undefined) {
      next.userId = base.userId;
      next.ix = this.#e.index.generation;
    }
    if (base?.meta !== undefined) next.meta = base.meta;
    const life = applyCookieMaxAge(base?.cookieMaxAge, c);
    if (life !== undefined) next.cookieMaxAge = life;
    const flash = c ? applyFlash(base?.flash, c) : base?.flash;
    if (flash !== undefined) next.flash = flash;
    return next;
  }

  protected persistNow(): Promise<"unchanged" | "saved" | "created" | "gone"> {
    return this.#persist(false);
  }

  /** `release`: this is the commit, the last write of a serialised request, which ends its lease. */
  async #persist(release: boolean): Promise<"unchanged" | "saved" | "created" | "gone"> {
    this.checkChanges();
    await this.load();
    if (this.state === "gone") return "gone";
    const e = this.#e;
    const dirty = this.dirty();
    const handle = this.#handle;
    if (this.#rec === undefined || handle === undefined) {
      if (!dirty) return "unchanged";
      const now = Date.now();
      for (let attempt = 0; attempt < 3; attempt++) {
        const nid = newSessionId();
        const next = this.#build(undefined, now, this.changes);
        const nh = hashId(nid);
        if (await e.create(nh, next)) {
          this.#id = nid;
          this.#handle = nh;
          this.#rec = next;
          this.#fresh = false;
          this.changes = undefined;
          this.#issueCookie = true;
          return "created";
        }
      }
      throw new SessionConflictError(3);
    }
    if (this.#lease !== undefined) return this.#update(handle, release);
    if (!dirty && !this.touchWanted && Date.now() - this.#rec.lastSeenAt < e.t.touchMs) return "unchanged";
    return new Promise((resolve, reject) => e.writeGroup(handle, { session: this, resolve, reject }));
  }

  #gone(rec: StoredRecord | Tombstone | undefined): void {
    // Destroyed or regenerated by someone else meanwhile: never carry its data forward.
    this.#goneByRegenerate = rec !== undefined && !isRecord(rec);
    this.state = "gone";
    this.#rec = undefined;
  }

  /** Another request took the session over after this one's lease ran out: its writes must not land. */
  #lost(): SessionConflictError {
    return new SessionConflictError(
      1,
      "this request's hold on the session ran out and another request took it over; the change was not saved — retry the request",
    );
  }

  /**
   * Writes a group of this process's requests of one session with one compare-and-set, each
   * request's changes applied in the order they came, retried on conflict. Settles every writer,
   * and answers what it wrote, for the next group of the line to build on without a read.
   */
  static async flush(
    e: Engine,
    handle: string,
    group: GroupWriter[],
    last: Known | undefined,
  ): Promise<Known | undefined> {
    const first = group[0]!.session;
    try {
      // The line's previous write, or the version the group's first request loaded, is the record
      // as the store holds it unless someone wrote since: try it before reading.
      let known: Read | undefined = last
        ? e.decode(handle, last)
        : first.#fresh
          ? { rec: first.#rec, version: first.#version }
          : undefined;
      for (let attempt = 0; attempt < e.maxRetries; attempt++) {
        let base: StoredRecord;
        let ver: KvVersion;
        if (known !== undefined && isRecord(known.rec)) {
          base = known.rec;
          ver = known.version;
        } else {
          const r = await e.read(handle);
          if (!isRecord(r.rec) || e.expired(r.rec, Date.now())) {
            for (const w of group) {
              w.session.#gone(r.rec);
              w.resolve("gone");
            }
            return undefined;
          }
          base = r.rec;
          ver = r.version;
        }
        const now = Date.now();
        let next = base;
        for (const w of group) next = w.session.#build(next, now, w.session.changes);
        // A serialised request holds this session: its lease stays.
        if (base.lease !== undefined) next.lease = base.lease;
        const written = await e.writeIf(handle, ver, next, deadlineOf(next, e.t.idleMs, e.t.absoluteMs));
        if (written !== false) {
          await first.#refile(handle, base, next);
          for (const w of group) {
            w.session.#saved(next, written.version);
            w.resolve("saved");
          }
          return written.version === null ? undefined : written;
        }
        known = undefined;
      }
      throw new SessionConflictError(e.maxRetries);
    } catch (err) {
      for (const w of group) w.reject(err);
      return undefined;
    }
  }

  /** After this request's own write: `version` is what the store holds now (null: not known). */
  #saved(next: StoredRecord, version: KvVersion): void {
    this.#rec = next;
    this.#version = version;
    this.#fresh = version !== null;
    this.changes = undefined;
    this.touchWanted = false;
  }

  /** An entry filed under an older key (secret rotation, or an index of an earlier version) moves. */
  async #refile(handle: string, base: StoredRecord, next: StoredRecord): Promise<void> {
    const uid = next.userId;
    if (uid === undefined || base.ix === next.ix) return;
    const entry = { createdAt: next.createdAt, meta: next.meta };
    await io("index", () => this.#e.index.refile(uid, handle, entry, next.createdAt + this.#e.t.absoluteMs));
  }

  /**
   * The lease holder's write (serialised mode): a compare-and-set on the version the lease last
   * wrote, which only succeeds while the record is as this request left it (so the lease is still
   * its own); after a conflict, read, check the lease, and apply the changes on top. `release`:
   * this is the commit, which ends the lease; a `save()` keeps it.
   */
  async #update(handle: string, release: boolean): Promise<"saved" | "gone"> {
    const e = this.#e;
    const lease = this.#lease!;
    // No renewal may land between the commit and its write.
    if (release) await lease.stop();
    // The commit's write passes the lease to the next request of the session queued in this process.
    const heir = release ? lease.successor() : undefined;
    let base: StoredRecord | undefined = this.#rec!;
    let ver = lease.version;
    for (let attempt = 0; attempt < e.maxRetries; attempt++) {
      if (base === undefined) {
        const r = await e.read(handle);
        if (!isRecord(r.rec) || e.expired(r.rec, Date.now())) {
          this.#gone(r.rec);
          return "gone";
        }
        if (r.rec.lease?.token !== lease.token) throw this.#lost();
        base = r.rec;
        ver = r.version;
      }
      const next = this.#build(base, Date.now(), this.changes);
      if (!release) next.lease = { token: lease.token, until: Date.now() + this.#times.leaseMs };
      else if (heir !== undefined) next.lease = heir;
      const written = await e.writeIf(handle, ver, next, deadlineOf(next, e.t.idleMs, e.t.absoluteMs));
      if (written !== false) {
        await this.#refile(handle, base, next);
        this.#saved(next, written.version);
        if (release) e.leases!.remember(handle, written, heir?.token);
        else lease.version = written.version;
        return "saved";
      }
      // A renewal, or a request not serialised (it keeps the lease), wrote meanwhile: read it.
      base = undefined;
    }
    throw new SessionConflictError(e.maxRetries);
  }

  /**
   * New ID with the current data (or none). The new record is created first, then
   * the old one is replaced by a tombstone with CAS: only one of two parallel
   * regenerations can win, and a write racing with us is either seen or refused.
   */
  protected async rotate(
    keepData: boolean,
    user?: { userId: string; meta: JsonValue | undefined },
  ): Promise<void> {
    this.checkChanges();
    await this.load();
    if (this.state === "gone") throw new SessionConflictError(1);
    const e = this.#e;
    const handle = this.#handle;
    let base: StoredRecord | undefined = this.#rec;
    let ver = this.#version;
    let haveFresh = this.#fresh;
    for (let attempt = 0; attempt < e.maxRetries; attempt++) {
      if (handle !== undefined && !haveFresh) {
        const r = await e.read(handle);
        if (!isRecord(r.rec) || e.expired(r.rec, Date.now())) {
          this.#gone(r.rec);
          throw new SessionConflictError(attempt + 1);
        }
        if (this.#lease !== undefined && r.rec.lease?.token !== this.#lease.token) throw this.#lost();
        base = r.rec;
        ver = r.version;
      }
      const now = Date.now();
      const kept = keepData ? this.#build(base, now, this.changes) : this.#build(undefined, now, undefined);
      const next: StoredRecord = { ...kept, createdAt: now, lastSeenAt: now };
      // The cookie lifetime describes the browser the user chose it on: a new ID keeps it, even without the data.
      const life = applyCookieMaxAge(base?.cookieMaxAge, this.changes);
      if (life !== undefined) next.cookieMaxAge = life;
      const oldUser = base?.userId;
      delete next.userId;
      delete next.meta;
      delete next.ix;
      if (user) {
        next.userId = user.userId;
        if (user.meta !== undefined) next.meta = user.meta;
      } else if (keepData && oldUser !== undefined) {
        next.userId = oldUser;
        if (base?.meta !== undefined) next.meta = base.meta;
      }
      const nid = newSessionId();
      const nh = hashId(nid);
      const uid = next.userId;
      if (uid !== undefined) {
        next.ix = e.index.generation;
        // The entry lives as long as the session can (its record's deadline moves with activity).
        const entry = { createdAt: now, meta: next.meta };
        await io("index", () => e.index.put(uid, nh, entry, now + e.t.absoluteMs));
      }
      if (!(await e.create(nh, next))) continue;
      if (uid !== undefined && now < (await io("revoke check", () => e.index.notBefore(uid)))) {
        // revokeUser ran while this login was in flight: it may have walked the index before our entry.
        await io("regenerate", () => e.records.delete(nh));
        await io("index", () => e.index.remove(uid, nh));
        throw new SessionConflictError(attempt + 1);
      }
      if (handle !== undefined && base !== undefined) {
        const expiresAt = Math.min(now + TOMBSTONE_MS, deadlineOf(next, e.t.idleMs, e.t.absoluteMs));
        if ((await e.writeIf(handle, ver, { movedAt: now }, expiresAt)) === false) {
          await io("regenerate", () => e.records.delete(nh));
          if (uid !== undefined) await io("index", () => e.index.remove(uid, nh));
          haveFresh = false;
          continue;
        }
        if (oldUser !== undefined) await io("index", () => e.index.remove(oldUser, handle));
      }
      // The tombstone replaced the held record; the new ID is known to no other request.
      await this.#dropLease();
      this.#id = nid;
      this.#handle = nh;
      this.#rec = next;
      this.#version = null;
      this.#fresh = false;
      this.changes = undefined;
      this.#issueCookie = true;
      if (user) await io("index", () => e.enforceLimit(user.userId, nh));
      return;
    }
    throw new SessionConflictError(e.maxRetries);
  }

  protected async end(): Promise<void> {
    await this.load();
    const h = this.#handle;
    try {
      if (h !== undefined) {
        await io("destroy", () => this.#e.records.delete(h));
        const u = this.#rec?.userId;
        if (u !== undefined) await io("index", () => this.#e.index.remove(u, h));
      }
    } finally {
      await this.#dropLease();
    }
    this.#id = this.#handle = this.#rec = undefined;
  }

  #cookie(value: string, maxAgeSec: number | undefined): string {
    return serializeCookie(this.#plan.name, value, { ...this.#plan.attrs, maxAge: maxAgeSec });
  }

  async commit(): Promise<CommitResult> {
    if (this.state === "committed") throw new SessionStateError("commit() called twice");
    const result: CommitResult = { setCookie: [], headers: {}, outcome: "untouched" };
    if (this.state === "destroyed") {
      this.state = "committed";
      if (this.#sentCookie()) result.setCookie.push(this.#cookie("", 0));
      result.headers["cache-control"] = "no-store";
      result.outcome = "destroyed";
      return result;
    }
    if (!this.loaded && !this.dirty() && !this.touchWanted && !this.#issueCookie) {
      this.state = "committed";
      return result;
    }
    if (
      this.loaded &&
      this.#rec !== undefined &&
      !this.dirty() &&
      !this.touchWanted &&
      !this.#issueCookie &&
      !this.cookieChanged &&
      this.#lease === undefined &&
      Date.now() - this.#rec.lastSeenAt < this.#e.t.touchMs
    ) {
      // The common read-only request: nothing to write, no cookie to send.
      this.state = "committed";
      result.outcome = "unchanged";
      return result;
    }
    let outcome: Awaited<ReturnType<typeof this.persistNow>>;
    try {
      outcome = await this.#persist(true);
    } finally {
      await this.#dropLease();
    }
    const wasGone = this.state === "gone";
    this.state = "committed";
    result.outcome = outcome === "unchanged" && this.#issueCookie ? "saved" : outcome;
    const rec = this.#rec;
    // A persistent cookie of the session's own slides: every write re-sends it with a fresh Max-Age.
    const resend = this.cookieChanged || (outcome === "saved" && typeof rec?.cookieMaxAge === "number");
    if (outcome !== "gone" && (this.#issueCookie || resend) && this.#id !== undefined && rec !== undefined) {
      const maxAge = cookieMaxAgeSec(
        this.#plan,
        rec.cookieMaxAge,
        rec.createdAt,
        this.#e.t.absoluteMs,
        Date.now(),
      );
      result.setCookie.push(
        this.#cookie(this.#e.ids.sign(this.#id, this.#handle ?? hashId(this.#id)), maxAge),
      );
    } else if ((wasGone && !this.#goneByRegenerate) || (rec === undefined && this.#sentCookie())) {
      // The cookie points at nothing (tampered, unknown, expired or destroyed elsewhere): clear it.
      result.setCookie.push(this.#cookie("", 0));
    }
    const legacy = this.#e.legacy;
    if (legacy?.sent(this.#input.cookieHeader))
      result.setCookie.push(legacy.clearing(this.#plan.attrs.secure === true));
    if (result.setCookie.length > 0) result.headers["cache-control"] = "no-store";
    return result;
  }
}
