import { join } from "node:path";
import { freePort } from "@kvsession/test-helpers";
import { CRASH_SIGNS, spawnApp } from "./app-process.js";

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
  const app = await spawnApp(main, { ...process.env, ...env, PORT: String(port) }, "app on ");
  return {
    base: `http://127.0.0.1:${port}`,
    stderr: app.stderr,
    alive: app.alive,
    crashed: () => CRASH_SIGNS.test(app.stderr()),
    kill: () => app.kill("SIGKILL"),
  };
}
