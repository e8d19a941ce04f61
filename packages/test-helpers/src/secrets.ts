/** A session secret long enough for every adapter's checks (32+ bytes); for tests only. */
export const SECRET = "0123456789abcdef0123456789abcdef-test-secret";
