/**
 * Writes to one session record from this process go out together. While one write is in
 * flight, the requests of the same session that want to write queue behind it, and the next
 * write applies all their changes, in order, with one compare-and-set on top of the record the
 * previous write left (read again only when another process wrote meanwhile). Compare-and-set
 * alone keeps every write correct, but N requests of one session writing one after another would
 * cost N reads and N writes (and, racing, up to N retries each); a line of groups costs one write
 * per group, so contention on one session cannot collapse throughput. Writers in other processes
 * still meet through compare-and-set and its retries. */
export type Flush<W, S> = (key: string, group: W[], last: S | undefined) => Promise<S | undefined>;

/** `S`: what a flush wrote, handed to the next flush of the same line (a write it can build on without a read). */
export function createGroupWriter<W, S>(flush: Flush<W, S>) {
  /** Writers queued behind the flush in flight, per key; no entry: nothing in flight. */
  const queued = new Map<string, W[]>();

  async function run(key: string, group: W[], last: S | undefined): Promise<void> {
    // A flush settles its own writers (it never throws), so the line always moves on.
    const wrote = await flush(key, group, last);
    const next = queued.get(key)!;
    if (next.length === 0) queued.delete(key);
    else {
      queued.set(key, []);
      void run(key, next, wrote);
    }
  }

  return function write(key: string, writer: W): void {
    const line = queued.get(key);
    if (line !== undefined) {
      line.push(writer);
      return;
    }
    queued.set(key, []);
    void run(key, [writer], undefined);
  };
}
