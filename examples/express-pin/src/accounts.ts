import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { type KvStore, withCodec } from "@kvsession/kv";

/** A name's registered PIN: a salted scrypt hash, with the cost it was made with. */
interface Account {
  salt: string;
  hash: string;
  /** scrypt's cost parameter (absent: LEGACY_COST). */
  N?: number;
}

/** Node's default scrypt cost: slow and memory-hard enough that a copy of the store is not a list of PINs. */
const COST = 16_384;
/** The cost of accounts stored before the cost was recorded with them, so their PINs still verify. */
const LEGACY_COST = 1024;

function hashPin(pin: string, salt: string, N: number): Promise<Buffer> {
  // Async: a KDF this slow must not block the event loop for every other request.
  return new Promise((resolve, reject) =>
    scrypt(pin, salt, 32, { N, maxmem: 256 * N * 8 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

async function matches(account: Account, pin: string): Promise<boolean> {
  const expected = Buffer.from(account.hash, "base64url");
  const actual = await hashPin(pin, account.salt, account.N ?? LEGACY_COST);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export type LoginResult = "registered" | "verified" | "wrong-pin";

/** Accounts under "accounts:": the first login of a name registers its PIN. */
export function createAccounts(store: KvStore) {
  const accounts = withCodec<Account>(store.withPrefix("accounts:"));
  return {
    /** Checks `pin` against the name's PIN, registering it when the name is new. */
    async login(name: string, pin: string): Promise<LoginResult> {
      const existing = await accounts.get(name);
      if (existing !== undefined) return (await matches(existing, pin)) ? "verified" : "wrong-pin";
      const salt = randomBytes(16).toString("base64url");
      const hash = (await hashPin(pin, salt, COST)).toString("base64url");
      if (await accounts.setIfAbsent(name, { salt, hash, N: COST })) return "registered";
      // Another request registered the name meanwhile: its PIN is the one to match.
      const winner = await accounts.get(name);
      return winner !== undefined && (await matches(winner, pin)) ? "verified" : "wrong-pin";
    },
  };
}
