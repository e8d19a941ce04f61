/**
 * Store-owned slabs for the memory store's small values.
 *
 * Every stored value must be a copy of its own (the caller may reuse its
 * buffer). A fresh ArrayBuffer per value costs more than the rest of a write; a slice of Node's shared 8 KiB pool is cheap but pins its whole slab
 * for as long as the entry lives, alongside unrelated short-lived buffers, so
 * the memory really held could be many times what `maxBytes` counted. Here the store
 * packs copies into 64 KiB slabs of its own and knows, per slab, how many of
 * its bytes are still live. Slabs whose every value died are dropped; when the
 * dead bytes grow past twice the live ones, the live values of the half-empty
 * slabs are moved into fresh ones (compaction). Dead bytes are memory held, so only a store without a
 * byte bound uses slabs: with `maxBytes`, values keep buffers of their own.
 */

/** Values larger than this get an ArrayBuffer of their own (the copy then dominates the allocation). */
export const SLAB_VALUE_MAX = 4 * 1024;
export const SLAB_BYTES = 64 * 1024;
/**
 * Emptied slabs kept for reuse. Allocating a fresh 64 KiB buffer costs a zero-fill, and V8 counts
 * every such buffer as external memory, whose growth triggers full collections on random
 * overwrites. Two spares bound what is held besides live
 * slabs to 128 KiB.
 */
export const SPARE_SLABS = 2;

export interface Slab {
  readonly bytes: Uint8Array;
  /** Bytes of live values in this slab. */
  live: number;
}

export interface Slabs {
  /**
   * Copies `src` into the current slab and returns its offset there (see
   * `current()`). No object is made: a view per stored value would be one
   * long-lived allocation per write, which the old generation then collects.
   */
  put(src: Uint8Array): number;
  /** The slab the last `put` wrote to, to `release` the value from later. */
  current(): Slab;
  /** The value of `length` bytes in `slab` died (overwritten, deleted, expired, evicted). */
  release(slab: Slab, length: number): void;
  /** Bytes held by slabs but part of no live value. */
  garbage(): number;
  /** Compaction is due: dead bytes exceed twice the live ones (and four slabs). */
  due(): boolean;
  /** A slab worth emptying: the caller `put`s its live values again, then `release`s them here. */
  sparse(slab: Slab): boolean;
  clear(): void;
}

export function createSlabs(): Slabs {
  let spare: Slab[] = [];
  let current: Slab = newSlab();
  let offset = 0;
  /** Bytes of the slabs that hold at least one live value, and of the current one. */
  let held = SLAB_BYTES;
  let live = 0;

  // A spare's old bytes need no clearing: only the ranges of live values are ever read.
  function newSlab(): Slab {
    return spare.pop() ?? { bytes: new Uint8Array(SLAB_BYTES), live: 0 };
  }

  function drop(slab: Slab): void {
    held -= SLAB_BYTES;
    if (spare.length < SPARE_SLABS) spare.push(slab);
  }

  return {
    put(src) {
      const n = src.byteLength;
      if (offset + n > SLAB_BYTES) {
        // The full slab stays held while any of its values lives; release() drops it.
        const full = current;
        current = newSlab();
        if (full.live === 0) drop(full);
        held += SLAB_BYTES;
        offset = 0;
      }
      const at = offset;
      current.bytes.set(src, at);
      offset += n;
      current.live += n;
      live += n;
      return at;
    },
    current: () => current,
    release(slab, length) {
      slab.live -= length;
      live -= length;
      if (slab.live === 0 && slab !== current) drop(slab);
    },
    // The current slab's unfilled tail is room for the next writes, not dead bytes.
    garbage: () => held - (SLAB_BYTES - offset) - live,
    due() {
      const dead = held - (SLAB_BYTES - offset) - live;
      return dead > 4 * SLAB_BYTES && dead > 2 * live;
    },
    sparse: (slab) => slab !== current && slab.live < SLAB_BYTES / 2,
    clear() {
      spare = [];
      current = newSlab();
      offset = 0;
      held = SLAB_BYTES;
      live = 0;
    },
  };
}
