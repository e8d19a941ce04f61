import { Agent, request } from "node:http";
import type { AddressInfo } from "node:net";
import type { Express } from "express";

export interface Served {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Listens on a free loopback port; `close` also drops kept-alive connections. */
export async function serve(app: Express): Promise<Served> {
  const server = app.listen(0, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface Reply {
  status: number;
  body: string;
  setCookie: string[];
}

/**
 * One HTTP client over a keep-alive agent. node:http rather than fetch: it sends any header
 * value HTTP allows (fetch refuses some), which the hostile-header scenarios need.
 */
export function httpClient(base: Served, maxSockets = 256) {
  const agent = new Agent({ keepAlive: true, maxSockets });
  return {
    send(
      method: string,
      path: string,
      headers: Record<string, string | string[]> = {},
      timeoutMs = 30_000,
    ): Promise<Reply> {
      return new Promise((resolve, reject) => {
        const req = request(
          { host: "127.0.0.1", port: base.port, method, path, headers, agent, timeout: timeoutMs },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              const sc = res.headers["set-cookie"];
              resolve({
                status: res.statusCode ?? 0,
                body: Buffer.concat(chunks).toString("utf8"),
                setCookie: sc === undefined ? [] : sc,
              });
            });
            res.on("error", reject);
          },
        );
        req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end();
      });
    },
    close(): void {
      agent.destroy();
    },
  };
}

export type HttpClient = ReturnType<typeof httpClient>;

/**
 * The `name=value` pair to send back for a cookie a response set, `null` when the response
 * cleared it, `undefined` when it did not mention it.
 */
export function cookieFrom(reply: Reply, name = "sid"): string | null | undefined {
  for (const line of reply.setCookie) {
    const pair = line.split(";")[0]!;
    const eq = pair.indexOf("=");
    if (pair.slice(0, eq) !== name) continue;
    const value = pair.slice(eq + 1);
    return value === "" ? null : `${name}=${value}`;
  }
  return undefined;
}
