import pg from "pg";

const BYTEA = 17;
const INT8 = 20;

/**
 * Reads `bytea` (hex text format) straight into an unpooled buffer: pg's own
 * parser returns a slice of Node's shared 8 KiB pool for small values, whose
 * `.buffer` would expose other rows' bytes to whoever receives the value.
 */
function parseBytea(text: string): Uint8Array {
  if (text.startsWith("\\x")) {
    const n = (text.length - 2) >>> 1;
    const out = Buffer.allocUnsafeSlow(n);
    if (n > 0) out.write(text.slice(2), "hex");
    return new Uint8Array(out.buffer, out.byteOffset, n);
  }
  // bytea_output = escape on this server: fall back to pg's parser, then detach the bytes.
  const legacy = pg.types.getTypeParser(BYTEA, "text")(text) as Buffer;
  return new Uint8Array(legacy);
}

/** Epoch-ms deadlines fit a double exactly; versions are read as text, never through this. */
const parseInt8 = (text: string) => Number(text);

/** Per-query type parsers, so the process-wide pg.types stay untouched for the app. */
export const kvTypes = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (format !== "binary") {
      if (oid === BYTEA) return parseBytea;
      if (oid === INT8) return parseInt8;
    }
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads do not accept a union format
    return pg.types.getTypeParser(oid, format as any);
  },
};
