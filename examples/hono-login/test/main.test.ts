import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const root = dirname(dirname(fileURLToPath(import.meta.url)));

it("main.ts starts on PORT with a SQLite file, serves the login page, and exits on SIGTERM", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hono-login-main-"));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=@kvsession/source", "src/main.ts"],
    {
      cwd: root,
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", SQLITE_PATH: join(dir, "db", "s.sqlite") },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`no start-up line within 30 s: ${out}`)), 30_000);
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once("exit", (code) => reject(new Error(`exited with ${code}: ${out}`)));
    });
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("<h1>Log in</h1>");
    expect(res.headers.getSetCookie()[0]).toMatch(/^sid=/);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});
