const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every 25 ms until it returns a value, for at most `ms` (a rejection counts as not
 * yet); then fails naming `what`.
 *
 * @example
 * await waitFor("the replica's promotion", 30_000, async () => ((await masterOfSlot(heir, slot)) === heir ? true : undefined));
 */
export async function waitFor<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(25);
  }
}
