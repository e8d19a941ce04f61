import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto";

/** The demo's user list: name -> password, hashed with scrypt at start-up (never kept in clear). */
export function createUsers(passwords: Record<string, string>) {
  const hashes = new Map<string, { salt: Buffer; hash: Buffer }>();
  for (const [name, password] of Object.entries(passwords)) {
    const salt = randomBytes(16);
    hashes.set(name, { salt, hash: scryptSync(password, salt, 32) });
  }
  // Unknown names are checked against a dummy hash so timing does not reveal which names exist.
  const dummy = { salt: randomBytes(16), hash: randomBytes(32) };
  return {
    verify(name: string, password: string): boolean {
      const entry = hashes.get(name);
      const { salt, hash } = entry ?? dummy;
      const ok = timingSafeEqual(scryptSync(password, salt, 32), hash);
      return ok && entry !== undefined;
    },
  };
}
