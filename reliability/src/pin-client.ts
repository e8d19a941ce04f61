import type { Answer, Call } from "./load.js";
import { send } from "./load.js";

/** A session of the PIN demo as a client holds it, and what the server acknowledged storing in it. */
export interface Tracked {
  cookie: string;
  /** The session's CSRF token: the page shows it, so reading it back proves the record is the same one. */
  csrf: string;
  /** The last name a 303 acknowledged. */
  name?: string;
  /** A name sent whose answer never came (the process died): it may or may not have landed. */
  pending?: string;
}

type Send = (call: Call) => Promise<Answer>;

export const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
export const nameOf = (html: string) => /<strong id="name">([^<]*)<\/strong>/.exec(html)?.[1];

/** GET / without a cookie: the demo creates a session holding a CSRF token. Undefined unless acknowledged. */
export async function openSession(s: Send): Promise<Tracked | undefined> {
  const a = await s({ method: "GET", path: "/" });
  const csrf = csrfOf(a.body);
  if (a.status !== 200 || !a.cookie || csrf === undefined) return undefined;
  return { cookie: a.cookie, csrf };
}

/** POST /profile: name and PIN into the session; a 303 acknowledges it and moves `name` on. */
export async function saveProfile(s: Send, t: Tracked, name: string, pin: string): Promise<Answer> {
  t.pending = name;
  const a = await s({
    method: "POST",
    path: "/profile",
    cookie: t.cookie,
    form: { _csrf: t.csrf, name, pin },
  });
  if (a.status === 303) {
    t.name = name;
    t.pending = undefined;
  } else if (a.status !== 0) t.pending = undefined;
  return a;
}

/** Runs fn over 0..count-1 with `width` at a time. */
export async function inParallel(
  width: number,
  count: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/**
 * Reads every tracked session back with its cookie: lost when the server no longer knows it (a new
 * cookie, another CSRF token) or its name is neither the acknowledged one nor the one in flight.
 */
export async function readBack(
  base: string,
  sessions: Tracked[],
): Promise<{ checked: number; lost: string[] }> {
  const url = new URL(base);
  const lost: string[] = [];
  await inParallel(8, sessions.length, async (i) => {
    const t = sessions[i]!;
    const a = await send(url, undefined, { method: "GET", path: "/", cookie: t.cookie }, 30_000);
    const name = nameOf(a.body);
    const nameOk =
      t.name === undefined ? name === undefined || name === t.pending : name === t.name || name === t.pending;
    if (a.status !== 200 || csrfOf(a.body) !== t.csrf || !nameOk)
      lost.push(`${t.cookie.slice(0, 12)}…: ${a.status} ${a.error ?? ""} name ${name} (acked ${t.name})`);
  });
  return { checked: sessions.length, lost };
}
