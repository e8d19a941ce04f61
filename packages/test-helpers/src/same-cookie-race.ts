import { cookieJar } from "./cookie-jar.js";

/**
 * One browser (one session cookie, made by `POST /start`) sends `n` `POST` requests to `path` at
 * once, then reads the counter back from `GET /peek`. Each route answers `{ n }` as JSON.
 *
 * @example
 * const { statuses, seen, final } = await sameCookieRace(url, "/serial", 8);
 * expect(final).toBe(8); // no increment lost
 */
export async function sameCookieRace(
  url: string,
  path: string,
  n: number,
): Promise<{ statuses: number[]; seen: number[]; final: unknown }> {
  const b = cookieJar();
  await b.fetch(`${url}/start`, { method: "POST" });
  const cookie = b.header();
  const answers = await Promise.all(
    Array.from({ length: n }, () => fetch(`${url}${path}`, { method: "POST", headers: { cookie } })),
  );
  const seen: number[] = [];
  for (const a of answers) if (a.status === 200) seen.push(((await a.json()) as { n: number }).n);
  const final = ((await (await b.fetch(`${url}/peek`)).json()) as { n: unknown }).n;
  return { statuses: answers.map((a) => a.status), seen: seen.sort((x, y) => x - y), final };
}
