/**
 * The parts of Keyv's types this package relies on, spelled out so that
 * `keyv` stays an optional peer: a store built with `fromKeyv` never loads it.
 */
export interface KeyvAdapterLike {
  /** Adapter options; only `dialect` is read, to name the store. */
  opts?: object | undefined;
  namespace?: string | undefined;
  get(key: string): unknown;
  set(key: string, value: unknown, ttl?: number): unknown;
  delete(key: string): unknown;
  clear?(): unknown;
  getMany?(keys: string[]): Promise<unknown[]>;
  setMany?(entries: Array<{ key: string; value: unknown; ttl?: number | undefined }>): unknown;
  iterator?(namespace?: string): AsyncIterable<unknown>;
  disconnect?(): Promise<void>;
}

export interface KeyvLike {
  opts: { store: KeyvAdapterLike | Map<string, unknown> };
  namespace?: string | undefined;
  useKeyPrefix?: boolean;
  getRaw(key: string): Promise<unknown>;
}
