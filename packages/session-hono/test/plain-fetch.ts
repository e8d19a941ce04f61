// The README's "no framework" example: the session core from a plain
// `fetch(request) => Response` handler, as on Deno, Bun, Cloudflare Workers or
// @hono/node-server. Kept as a file so the test runs exactly what the README shows.
import type { KvStore } from "@kvsession/kv";
import { createSessions } from "@kvsession/session";

export function createHandler(store: KvStore, secret: string) {
  const sessions = createSessions<{ views: number }>({ store, secrets: [secret] });

  return async function handle(request: Request): Promise<Response> {
    const session = sessions.open({
      cookieHeader: request.headers.get("cookie") ?? undefined,
      secure: new URL(request.url).protocol === "https:",
    });
    let response: Response;
    if (new URL(request.url).pathname === "/logout" && request.method === "POST") {
      await session.destroy();
      response = new Response("bye\n");
    } else {
      const views = ((await session.get("views")) ?? 0) + 1;
      session.set("views", views);
      response = new Response(`views: ${views}\n`);
    }
    // Commit last: it writes the changes and says which headers the response needs.
    const { setCookie, headers } = await session.commit();
    for (const cookie of setCookie) response.headers.append("set-cookie", cookie);
    if (headers["cache-control"]) response.headers.set("cache-control", headers["cache-control"]);
    return response;
  };
}
