import { KvArgumentError } from "@kvsession/kv";
import type { ScanNode } from "./connection.js";
import type { KeySpace } from "./keys.js";

/**
 * Where a listing stands: the node being scanned (by what it holds, so a changed
 * master order cannot make it skip a node), its SCAN cursor, and the keys one
 * SCAN step returned beyond the page size. SCAN cannot resume in the middle of
 * a step, so those few keys travel in the cursor instead of being dropped.
 */
interface Position {
  /** Node id, or null once every node is fully scanned. */
  n: string | null;
  /** That node's address: a SCAN cursor means nothing to another process, such as a promoted replica. */
  a?: string;
  c: string;
  p: string[];
}

/** SCAN steps one page may take before it returns (possibly empty), so a sparse namespace never blocks. */
const MAX_STEPS_PER_PAGE = 16;

function encode(pos: Position): string {
  return Buffer.from(JSON.stringify(pos)).toString("base64url");
}

/** A cursor comes from the caller: anything but the exact shape this module writes is refused. */
function decode(cursor: string): Position {
  try {
    const pos = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Position;
    if (
      pos !== null &&
      typeof pos === "object" &&
      (pos.n === null || typeof pos.n === "string") &&
      (pos.a === undefined || typeof pos.a === "string") &&
      typeof pos.c === "string" &&
      /^[0-9]{1,20}$/.test(pos.c) &&
      Array.isArray(pos.p) &&
      pos.p.every((k) => typeof k === "string")
    )
      return pos;
  } catch {
    // fall through
  }
  throw new KvArgumentError(
    "cursor is not one this Redis store returned; pass the cursor of the previous page unchanged",
  );
}

/**
 * One page of Redis keys (namespace included) under `prefix`, from SCAN with
 * an escaped MATCH pattern over every node. At-least-once: SCAN may return a
 * key twice, never misses one present for the whole listing.
 *
 * The first `carried` keys come from the cursor (keys an earlier SCAN step
 * returned beyond its page), not from the server: a forged cursor can name any
 * key, so only keys inside this listing's prefix are taken from it, and the
 * caller keeps only those that exist.
 */
export async function scanPage(
  nodes: ScanNode[],
  ks: KeySpace,
  prefix: string,
  cursor: string | undefined,
  limit: number,
): Promise<{ keys: string[]; carried: number; cursor: string | undefined }> {
  const pos: Position = cursor ? decode(cursor) : { n: nodes[0]?.id ?? null, c: "0", p: [] };
  const head = ks.namespace + prefix;
  const own = pos.p.filter((k) => k.startsWith(head) && !ks.isVersionRecord(k) && !k.includes("\0"));
  const out = own.splice(0, limit);
  const carried = out.length;
  const pending = own;
  let idx = pos.n === null ? nodes.length : nodes.findIndex((x) => x.id >= (pos.n as string));
  if (idx < 0) idx = nodes.length;
  // The node we were on is gone, or its shard has another master now (failover): start that shard, or
  // the next one, from its beginning. Keys it already returned may come again; none is skipped.
  const same =
    idx < nodes.length && nodes[idx]?.id === pos.n && (pos.a === undefined || nodes[idx]?.address === pos.a);
  let scanCursor = same ? pos.c : "0";
  const match = ks.match(prefix);
  const count = Math.min(1000, Math.max(10, limit));
  for (let steps = 0; out.length < limit && idx < nodes.length && steps < MAX_STEPS_PER_PAGE; steps++) {
    const node = nodes[idx] as ScanNode;
    const res = await node.scan(scanCursor, match, count);
    for (const k of res.keys) {
      if (ks.isVersionRecord(k)) continue;
      if (out.length < limit) out.push(k);
      else pending.push(k);
    }
    scanCursor = res.cursor;
    if (scanCursor === "0") idx++;
  }
  const done = idx >= nodes.length;
  if (done && pending.length === 0) return { keys: out, carried, cursor: undefined };
  return {
    keys: out,
    carried,
    cursor: encode(
      done
        ? { n: null, c: scanCursor, p: pending }
        : { n: (nodes[idx] as ScanNode).id, a: (nodes[idx] as ScanNode).address, c: scanCursor, p: pending },
    ),
  };
}
