/**
 * A binary min-heap of (deadline, key, stamp) used by stores without native
 * expiry to find what has expired without scanning every entry. Stale items
 * (the key was overwritten or deleted since) are skipped by the caller — by
 * `stamp`, or as MemoryStore does by the item's identity (one live item per
 * entry, pushed back with a later deadline when it comes due early) — and the
 * heap is compacted when they outnumber the live ones.
 */
export interface HeapItem {
  at: number;
  key: string;
  stamp: number;
}

export function createDeadlineHeap() {
  let items: HeapItem[] = [];

  function up(i: number): void {
    const it = items[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p]!;
      if (parent.at <= it.at) break;
      items[i] = parent;
      i = p;
    }
    items[i] = it;
  }
  function down(i: number): void {
    const n = items.length;
    const it = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && items[r]!.at < items[l]!.at ? r : l;
      if (items[c]!.at >= it.at) break;
      items[i] = items[c]!;
      i = c;
    }
    items[i] = it;
  }

  return {
    get size() {
      return items.length;
    },
    push(item: HeapItem): void {
      items.push(item);
      up(items.length - 1);
    },
    peek(): HeapItem | undefined {
      return items[0];
    },
    pop(): HeapItem | undefined {
      const top = items[0];
      const last = items.pop();
      if (items.length > 0 && last) {
        items[0] = last;
        down(0);
      }
      return top;
    },
    /** Keeps only the items `keep` accepts and restores the heap property in O(n). */
    compact(keep: (item: HeapItem) => boolean): void {
      items = items.filter(keep);
      for (let i = (items.length >> 1) - 1; i >= 0; i--) down(i);
    },
    clear(): void {
      items = [];
    },
  };
}
