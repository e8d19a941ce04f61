import type { CommitResult, OpenInput, Session, Sessions } from "../src/index.js";

export const SECRET = "a-test-secret-that-is-long-enough-0123456789";
export const SECRET_2 = "another-test-secret-long-enough-9876543210xyz";

/** A minimal browser cookie jar: what the client would send back on the next request. */
export function createJar() {
  const jar = new Map<string, string>();
  return {
    jar,
    header(): string {
      return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    },
    apply(result: CommitResult): void {
      for (const line of result.setCookie) {
        const [pair, ...attrs] = line.split("; ");
        const eq = pair!.indexOf("=");
        const name = pair!.slice(0, eq);
        const value = pair!.slice(eq + 1);
        if (attrs.some((a) => a === "Max-Age=0")) jar.delete(name);
        else jar.set(name, value);
      }
    },
  };
}

export type Jar = ReturnType<typeof createJar>;

/** A browser's new session holding n = 0; returns its Cookie header. */
export async function seeded(sessions: { open(input?: OpenInput): Session<object> }): Promise<string> {
  const jar = createJar();
  const s = sessions.open({ secure: true });
  s.set("n" as never, 0 as never);
  jar.apply(await s.commit());
  return jar.header();
}

interface Opener<D extends object> {
  open(input?: OpenInput): Session<D>;
}

/** One request of a browser: open with its cookies, run the handler, commit, store the cookies it got. */
export async function request<D extends object, T>(
  sessions: Opener<D>,
  jar: Jar,
  handler: (s: Session<D>) => Promise<T> | T,
  input: OpenInput = { secure: true },
): Promise<{ value: T; result: CommitResult }> {
  const s = sessions.open({ ...input, cookieHeader: jar.header() });
  const value = await handler(s);
  const result = await s.commit();
  jar.apply(result);
  return { value, result };
}

/** The one session cookie value in a commit result. */
export function cookieValue(result: CommitResult, name = "__Host-sid"): string | undefined {
  for (const line of result.setCookie) {
    if (line.startsWith(`${name}=`)) return line.slice(name.length + 1).split(";")[0];
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One request that reads n, lets other requests run, and writes n + 1. */
export async function increment(sessions: Sessions, cookieHeader: string, pause: number): Promise<void> {
  const s = sessions.open({ cookieHeader, secure: true });
  const n = (await s.get("n")) as number;
  await sleep(pause);
  s.set("n", n + 1);
  await s.commit();
}

/** The session's n, read without taking its lease. */
export async function readN(sessions: Sessions, cookieHeader: string): Promise<unknown> {
  return sessions.open({ cookieHeader, secure: true, serialize: false }).get("n");
}
