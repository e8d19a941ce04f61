/**
 * Short (CI, default) or long (`RELIABILITY=long`) form of every scenario.
 * Each scenario reads its bounds from here so the two forms differ only in size.
 */
export const LONG = process.env.RELIABILITY === "long";

/** Picks the short or the long figure. */
export const sized = <T>(short: T, long: T): T => (LONG ? long : short);
