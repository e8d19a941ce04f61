import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./closed-port.js";

const run = promisify(execFile);

/** The newest installed PostgreSQL server binaries (Debian layout), or undefined. */
export function pgBinDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, "bin", "pg_ctl"))) return join(root, v, "bin");
  return undefined;
}

export interface PrivateServer {
  url: string;
  /** `immediate` = the server dies without a clean shutdown (like a crash); `fast` = orderly. */
  stop(mode?: "immediate" | "fast"): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP (true) or SIGCONT (false) the postmaster and its backends: a server that hangs without closing sockets. */
  freeze(frozen: boolean): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * A throwaway PostgreSQL cluster of the test's own on a free loopback port, so
 * a test can kill and restart "the server" without touching the shared one.
 * initdb refuses to run as root, so as root it runs as the postgres user.
 */
export async function startPrivateServer(): Promise<PrivateServer> {
  const bin = pgBinDir();
  if (!bin) throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql");
  const dir = await mkdtemp(join(tmpdir(), "kvpg-"));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await chown(dir, ...(await ids("postgres")));
  const exec = (file: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", join(bin, file), ...args]) : run(join(bin, file), args);
  const data = join(dir, "data");
  const port = await freePort();
  await exec("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=30`;
  const start = async () => {
    await exec("pg_ctl", ["-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "-t", "30", "start"]);
  };
  await start();
  const server: PrivateServer = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    async stop(mode = "immediate") {
      await exec("pg_ctl", ["-D", data, "-m", mode, "-w", "-t", "30", "stop"]);
    },
    async freeze(frozen) {
      const pid = Number((await readFile(join(data, "postmaster.pid"), "utf8")).split("\n")[0]);
      const { stdout } = await run("pgrep", ["-P", String(pid)]).catch(() => ({ stdout: "" }));
      const pids = [pid, ...stdout.split("\n").filter(Boolean).map(Number)];
      for (const p of pids) process.kill(p, frozen ? "SIGSTOP" : "SIGCONT");
    },
    async destroy() {
      await server.freeze(false).catch(() => {});
      await exec("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

async function ids(user: string): Promise<[number, number]> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
    run("id", ["-u", user]),
    run("id", ["-g", user]),
  ]);
  return [Number(uid), Number(gid)];
}
