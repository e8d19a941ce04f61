import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "@kvsession/test-helpers";

const REPO = join(import.meta.dirname, "..", "..");
const MAIN = join(REPO, "examples", "express-pin", "src", "main.ts");

/** Fixed, so cookies issued before an app restart still verify after it. */
export const APP_SECRET = "reliability-express-pin-secret-0123456789abcdef";

/** What a scenario may set; everything else of the parent's store selection is dropped. */
export interface AppEnv {
  REDIS_URL?: string;
  DATABASE_URL?: string;
  SQLITE_PATH?: string;
  KV_FS_DIR?: string;
  STORE_TIMEOUT_MS?: string;
  STORE_SWEEP_INTERVAL_MS?: string;
  SESSION_IDLE_TIMEOUT_MS?: string;
  /** Node flags for the app (the soak bounds its heap). */
  NODE_OPTIONS?: string;
}

export interface AppProcess {
  base: string;
  port: number;
  pid: number;
  /** Everything the app wrote to stderr so far. */
  stderr(): string;
  alive(): boolean;
  /** Resident set size of the app process, from /proc (bytes; NaN once the process is gone). */
  rss(): number;
  /** Sends the signal and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Signs that Node lost an error instead of the app answering it (PostgreSQL's own "FATAL:" lines are answers). */
export const CRASH_SIGNS =
  /unhandledRejection|Unhandled|uncaughtException|triggerUncaughtException|FATAL ERROR/;

/**
 * Starts examples/express-pin's `main.ts` (the demo as users run it) as a child process on a free
 * loopback port, with the given store environment, and resolves once it answers HTTP.
 *
 * @example
 * const app = await startApp({ SQLITE_PATH: "/tmp/x/sessions.db" });
 * await fetch(app.base);
 * await app.kill("SIGKILL");
 */
export async function startApp(env: AppEnv, port?: number): Promise<AppProcess> {
  const p = port ?? (await freePort());
  const clean = { ...process.env };
  for (const k of ["REDIS_URL", "DATABASE_URL", "SQLITE_PATH", "KV_FS_DIR", "TRUST_PROXY"]) delete clean[k];
  const app = await spawnApp(
    MAIN,
    { ...clean, ...env, PORT: String(p), HOST: "127.0.0.1", SESSION_SECRET: APP_SECRET },
    "PIN demo on",
  );
  const pid = app.pid;
  return {
    ...app,
    base: `http://127.0.0.1:${p}`,
    port: p,
    rss() {
      let status: string;
      try {
        status = readFileSync(`/proc/${pid}/status`, "utf8");
      } catch {
        return Number.NaN; // the app is gone: its crash is what a test should report, not this read
      }
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
    },
  };
}

/** A Node.js app of the tests as a child process: what `startApp` and `startClusterApp` share. */
export interface SpawnedApp {
  pid: number;
  /** Everything the app wrote to stderr so far (an outage logs one error per request: head and tail kept). */
  stderr(): string;
  alive(): boolean;
  /** Sends the signal (SIGTERM unless given) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `main` with tsx and the workspace sources, and resolves once its stdout says `ready`
 * (rejects if it exits first or stays silent for 30 s).
 *
 * @example
 * const app = await spawnApp("/path/to/main.ts", { ...process.env, PORT: "3000" }, "app on ");
 * await app.kill("SIGKILL");
 */
export async function spawnApp(main: string, env: NodeJS.ProcessEnv, ready: string): Promise<SpawnedApp> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=@kvsession/source", main],
    {
      cwd: REPO,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let err = "";
  let out = "";
  child.stderr!.on("data", (d: Buffer) => {
    err =
      err.length > 200_000 ? err.slice(0, 100_000) + err.slice(-50_000) + d.toString() : err + d.toString();
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
      out += d.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${main} exited (${code ?? signal}) before listening:\n${err}`));
    });
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    pid: child.pid!,
    stderr: () => err,
    alive,
    async kill(signal = "SIGTERM") {
      if (!alive()) return;
      child.kill(signal);
      await exited;
    },
  };
}
