import { KvCodecError } from "./errors.js";

/**
 * Turns typed values into the bytes a driver stores, and back. Codecs never
 * execute code while decoding: there is no pickle-style format here.
 */
export interface Codec<T> {
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** What the JSON codec round-trips exactly. Anything else is refused at encode time. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const FORBIDDEN = new Set(["__proto__", "constructor", "prototype"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function check(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value))
        throw new KvCodecError(
          `${path} is ${value}; JSON cannot hold NaN or Infinity — store null or a string`,
        );
      return;
    case "object": {
      if (value === null) return;
      if (seen.has(value)) throw new KvCodecError(`${path} is a circular reference; JSON cannot hold cycles`);
      seen.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) check(value[i], `${path}[${i}]`, seen);
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          const kind = (value as object).constructor?.name ?? "object";
          throw new KvCodecError(
            `${path} is a ${kind}; the JSON codec stores plain objects only — convert it first (a Date to toISOString(), bytes to base64)`,
          );
        }
        for (const key of Object.keys(value)) {
          if (FORBIDDEN.has(key))
            throw new KvCodecError(`${path} has the key "${key}", refused to prevent prototype pollution`);
          const v = (value as Record<string, unknown>)[key];
          // Mirrors JSON.stringify, which drops undefined properties: documented, not silent corruption.
          if (v !== undefined) check(v, `${path}.${key}`, seen);
        }
      }
      seen.delete(value);
      return;
    }
    default:
      throw new KvCodecError(`${path} is a ${typeof value}; the JSON codec stores JSON values only`);
  }
}

function refuse(key: string, value: unknown): unknown {
  if (FORBIDDEN.has(key))
    throw new KvCodecError(`stored JSON has the key "${key}"; refused to prevent prototype pollution`);
  return value;
}

/**
 * JSON: null, booleans, finite numbers, strings, arrays and plain objects
 * round-trip exactly, except that -0 reads back as 0. Object properties whose
 * value is `undefined` are omitted, as JSON.stringify does. Dates, Maps, class instances, bigints, NaN and cycles
 * are refused with a `KvCodecError` instead of being silently mangled, and so
 * are the keys `__proto__`, `constructor` and `prototype`, on encode and decode.
 *
 * @example
 * const users = withCodec(store, json<{ name: string }>());
 * await users.set("u1", { name: "Ada" });
 */
export function json<T = JsonValue>(): Codec<T> {
  return jsonCodec as Codec<T>;
}

const jsonCodec: Codec<unknown> = {
  name: "json",
  encode(value) {
    if (value === undefined) throw new KvCodecError("cannot store undefined; delete the key instead");
    check(value, "value", new Set());
    return encoder.encode(JSON.stringify(value));
  },
  decode(bytes) {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch (cause) {
      throw new KvCodecError("stored value is not valid UTF-8, so not JSON written by this codec", { cause });
    }
    // A reviver makes parsing several times slower, so it checks the parsed keys only when the
    // text could spell a forbidden name: literally, or through a \u escape such as "\u005f_proto__".
    const suspicious =
      text.includes("\\u") ||
      text.includes("__proto__") ||
      text.includes("constructor") ||
      text.includes("prototype");
    try {
      return suspicious ? JSON.parse(text, refuse) : JSON.parse(text);
    } catch (cause) {
      if (cause instanceof KvCodecError) throw cause;
      throw new KvCodecError("stored value is not valid JSON", { cause });
    }
  },
};

/** UTF-8 text. Refuses lone surrogates, which UTF-8 cannot carry. */
export const text: Codec<string> = {
  name: "text",
  encode(value) {
    if (typeof value !== "string")
      throw new KvCodecError(`the text codec stores strings, got ${typeof value}`);
    if (!value.isWellFormed()) throw new KvCodecError("string has a lone surrogate; UTF-8 cannot store it");
    return encoder.encode(value);
  },
  decode(bytes) {
    try {
      return decoder.decode(bytes);
    } catch (cause) {
      throw new KvCodecError("stored value is not valid UTF-8", { cause });
    }
  },
};

/** Raw bytes, unchanged. */
export const bytes: Codec<Uint8Array> = {
  name: "bytes",
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new KvCodecError("the bytes codec stores Uint8Array values");
    return value;
  },
  decode(value) {
    return value;
  },
};
