import { type ChildProcess, type StdioOptions, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/**
 * Runs a TypeScript fixture in its own Node process, the workspace's packages loaded from their
 * sources (as the tests load them), from the repository's root.
 *
 * @example
 * const child = spawnFixture(join(import.meta.dirname, "fixtures", "holder.ts"), [path], ["pipe", "pipe", "inherit"]);
 */
export function spawnFixture(fixture: string, args: string[], stdio: StdioOptions): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "--conditions=@kvsession/source", fixture, ...args], {
    cwd: repoRoot,
    stdio,
  });
}

export interface ChildServer {
  url: string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** What the process wrote to stderr so far (its crash report, when it died). */
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Runs a server fixture in its own Node process, from the TypeScript sources, and waits for the
 * "listening on http://…" line it prints: a fault that would end the process shows as a dead
 * server rather than taking the test runner down.
 *
 * @example
 * const server = await startChildServer(join(import.meta.dirname, "fixtures", "app.ts"), ["session"]);
 * await fetch(`${server.url}/ok`);
 * await server.stop();
 */
export function startChildServer(fixture: string, args: string[]): Promise<ChildServer> {
  const child = spawnFixture(fixture, args, ["ignore", "pipe", "pipe"]);
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m)
        resolve({
          url: m[1]!,
          alive: () => child.exitCode === null && child.signalCode === null,
          stderr: () => err,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            await exited;
          },
        });
    });
    child.once("exit", (code) =>
      reject(new Error(`${fixture} exited with ${code} before listening:\n${err}`)),
    );
  });
}

/**
 * One child server per entry of `args` (its fixture arguments), started before the file's tests and
 * stopped after them; the returned object holds each under its key once they are up.
 *
 * @example
 * const servers = childServersForFile(fixture, { plain: ["plain"], session: ["session"] });
 * it("…", async () => { await fetch(`${servers.session.url}/ok`); });
 */
export function childServersForFile<K extends string>(
  fixture: string,
  args: Record<K, string[]>,
): Record<K, ChildServer> {
  const servers = {} as Record<K, ChildServer>;
  const keys = Object.keys(args) as K[];
  beforeAll(async () => {
    const started = await Promise.all(keys.map((k) => startChildServer(fixture, args[k])));
    keys.forEach((k, i) => {
      servers[k] = started[i]!;
    });
  });
  afterAll(async () => {
    await Promise.all(keys.map((k) => servers[k]?.stop()));
  });
  return servers;
}
