/**
 * The parts of Keyv's types this package relies on, spelled out so that
 * `keyv` stays an optional peer: a store built with `fromKeyv` never loads it.
 * Keyv 5 and Keyv 6 are both described.
 */
export interface KeyvAdapterLike {
  /** Adapter options (Keyv 5 adapters); only `dialect` is read, to name the store. */
  opts?: object | undefined;
  namespace?: string | undefined;
  /** Keyv 6 adapters declare `expires: true` here: `set` then takes an absolute deadline, not a TTL. */
  capabilities?: { expires?: boolean | undefined } | undefined;
  get(key: string): unknown;
  /** The third argument is a TTL in ms (Keyv 5) or an absolute deadline in epoch ms (Keyv 6). */
  set(key: string, value: unknown, ttlOrExpires?: number): unknown;
  delete(key: string): unknown;
  clear?(): unknown;
  getMany?(keys: string[]): Promise<unknown[]>;
  setMany?(
    entries: Array<{ key: string; value: unknown; ttl?: number | undefined; expires?: number | undefined }>,
  ): unknown;
  iterator?(namespace?: string): AsyncIterable<unknown>;
  disconnect?(): Promise<void>;
}

/** A Keyv 5 instance: it prefixes keys with its namespace itself. */
export interface Keyv5Like {
  opts: { store: KeyvAdapterLike | Map<string, unknown>; compression?: unknown };
  namespace?: string | undefined;
  useKeyPrefix?: boolean;
  getRaw(key: string): Promise<unknown>;
}

/** A Keyv 6 instance: its `store` is the adapter it resolved, which applies the namespace itself. */
export interface Keyv6Like {
  readonly store: KeyvAdapterLike;
  readonly compression?: unknown;
  readonly encryption?: unknown;
  readonly serialization?: unknown;
  namespace?: string | undefined;
  getRaw(key: string): Promise<unknown>;
}

export type KeyvLike = Keyv5Like | Keyv6Like;
