import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { CRASH_SIGNS } from "./app-process.js";
import { freePort } from "./servers.js";

const REPO = join(import.meta.dirname, "..", "..");
/** The apps of the failover scenarios: ours (kvSession over kv-redis) and the peer's (express-session + connect-redis over ioredis). */
export const APP_MAIN = {
  kvSession: join(import.meta.dirname, "cluster-app-main.ts"),
  peer: join(import.meta.dirname, "peer-app-main.ts"),
};

export interface ClusterApp {
  base: string;
  stderr(): string;
  alive(): boolean;
  /** Whether the app's stderr shows an error Node lost instead of the app answering it. */
  crashed(): boolean;
  kill(): Promise<void>;
}

/**
 * Starts a failover scenario app (by default `cluster-app-main.ts`, kvSession over a kv-redis
 * Cluster or Sentinel store) as a child process on a free loopback port, and resolves once it listens.
 *
 * @example
 * const app = await startClusterApp({ CLUSTER_NODES: "redis://127.0.0.1:7000", WAIT_REPLICAS: "1" });
 * const peer = await startClusterApp({ CLUSTER_NODES: "redis://127.0.0.1:7000" }, APP_MAIN.peer);
 */
export async function startClusterApp(
  env: Record<string, string>,
  main: string = APP_MAIN.kvSession,
): Promise<ClusterApp> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=@kvsession/source", main],
    { cwd: REPO, env: { ...process.env, ...env, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err = err.length > 100_000 ? err.slice(0, 50_000) + d.toString() : err + d.toString();
  });
  // A test that fails or times out must not leave the app running on the shared machine.
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      process.off("exit", reap);
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${main} did not start in 30 s:\n${err}`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("app on ")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${main} exited (${code ?? signal}) before listening:\n${err}`));
    });
  });
  return {
    base: `http://127.0.0.1:${port}`,
    stderr: () => err,
    alive: () => child.exitCode === null && child.signalCode === null,
    crashed: () => CRASH_SIGNS.test(err),
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}
