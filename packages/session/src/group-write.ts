/**
 * Writes to one session record from this process go out together. While one write is in
 * flight, the requests of the same session that want to write queue behind it, and the next
 * write applies all their changes, in order, with one compare-and-set on top of the record the
 * previous write left (read again only when another process wrote meanwhile). Compare-and-set
 * alone keeps every write correct, but N requests of one session writing one after another would
 * cost N reads and N writes (and, racing, up to N retries each); a line of groups costs one write
 * per group, so contention on one session cannot collapse throughput. Writers in other processes
 * still meet through compare-and-set and its retries.
 */
export type Flush<W, S> = (key: string, group: W[], last: S | undefined) => Promise<S | undefined>;

interface Line<W, S> {
  /** Writers for the next flush. */
  waiting: W[];
  /** What the previous flush of this line wrote. */
  last: S | undefined;
  /** A flush is due or in flight. */
  busy: boolean;
}

/**
 * `S`: what a flush wrote, handed to the next flush of the same line (a write it can build on without a read).
 * `settlesInTurn`: the store's capability of that name (see `waitFor` below).
 */
export function createGroupWriter<W, S>(flush: Flush<W, S>, settlesInTurn: boolean) {
  /**
   * When the first write of an idle line goes. A store that answers within the turn (memory, SQLite)
   * would finish each request's write before the next request of the same poll commits, so the line
   * waits for the turn's end and they share one write. A store that answers later gathers them behind
   * the write in flight anyway, and a wait there only delays the write past the store's own batching.
   */
  const waitFor = settlesInTurn ? setImmediate : process.nextTick;
  /** Per key, while a flush is due or in flight, and until the end of the turn after it. */
  const lines = new Map<string, Line<W, S>>();

  function drain(key: string, line: Line<W, S>): void {
    if (line.waiting.length === 0) {
      line.busy = false;
      // Requests whose loads were answered before the write landed commit later in this turn: they
      // build on the write too, instead of failing a compare-and-set with the version they loaded.
      setImmediate(forget, key, line);
      return;
    }
    const group = line.waiting;
    line.waiting = [];
    // A flush settles its own writers (it never throws), so the line always moves on.
    void flush(key, group, line.last).then((wrote) => {
      line.last = wrote;
      drain(key, line);
    });
  }

  function forget(key: string, line: Line<W, S>): void {
    if (!line.busy && lines.get(key) === line) lines.delete(key);
  }

  return function write(key: string, writer: W): void {
    let line = lines.get(key);
    if (line === undefined) {
      line = { waiting: [], last: undefined, busy: false };
      lines.set(key, line);
    }
    line.waiting.push(writer);
    if (line.busy) return;
    line.busy = true;
    // The other commits of this task (requests whose loads were answered together) join it.
    waitFor(drain, key, line);
  };
}
