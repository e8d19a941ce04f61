// MemoryStore instructions per operation, counted by valgrind's callgrind: the memory suite's
// byte-API gets and sets of 100 B and 10 KB values over 10,000 pre-loaded keys, one operation at a
// time, each case in a process of its own with instrumentation off until its warm-up is done.
//   pnpm --filter @kvsession/bench bench:memory:instructions
//   ... --ops N --warmup N     (defaults 200000 and 100000)
// It runs the built `dist/` of @kvsession/kv (build first), so two builds can be compared side by side.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createMemoryStore } from "@kvsession/kv";
import { callgrindArgs, mainThreadTotal } from "./callgrind.js";
import { flag, repoRoot } from "./http/cli.js";
import { bytesOf } from "./values.js";

const KEYS = 10_000;
const CASES = ["get 100 B", "set 100 B", "get 10 KB", "set 10 KB"] as const;
type Case = (typeof CASES)[number];

/** The measured process: pre-load, warm up, then run `ops` operations between two lines from the parent. */
async function child(name: Case, warmup: number, ops: number): Promise<void> {
  const [op, size] = name.split(" ") as ["get" | "set", string];
  const value = bytesOf(size === "100" ? 100 : 10 * 1024);
  const store = createMemoryStore();
  for (let i = 0; i < KEYS; i++) await store.set(`k${i}`, value);
  const run = async (from: number, n: number) => {
    for (let i = from; i < from + n; i++) {
      if (op === "get") await store.get(`k${i % KEYS}`);
      else await store.set(`k${i % KEYS}`, value);
    }
  };
  await run(0, warmup);
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  process.stdout.write("READY\n");
  await lines.next();
  await run(warmup, ops);
  process.stdout.write("DONE\n");
  await lines.next();
  await store.close();
  process.exit(0);
}

/** One case under callgrind; the main thread's instructions per operation. */
async function measure(name: Case, warmup: number, ops: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "kvsession-callgrind-"));
  const proc: ChildProcess = spawn(
    "valgrind",
    [
      ...callgrindArgs(join(dir, "out")),
      process.execPath,
      "--import",
      "tsx",
      fileURLToPath(import.meta.url),
      "--child",
      name,
      String(warmup),
      String(ops),
    ],
    { cwd: repoRoot, stdio: ["pipe", "pipe", "pipe"] },
  );
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const out = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const expect = async (line: string) => {
    const r = await out.next();
    if (r.done || r.value !== line)
      throw new Error(`${name}: expected ${line}, got ${String(r.value)}; valgrind said: ${stderr}`);
  };
  const control = (arg: string) =>
    execFileSync("callgrind_control", [arg, String(proc.pid)], { stdio: "ignore" });
  try {
    await expect("READY");
    control("--instr=on");
    proc.stdin!.write("go\n");
    await expect("DONE");
    control("--instr=off");
    control("--dump");
    proc.stdin!.end("end\n");
    return mainThreadTotal(dir) / ops;
  } finally {
    proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child") {
  await child(process.argv[3] as Case, Number(process.argv[4]), Number(process.argv[5]));
} else {
  if (spawnSync("valgrind", ["--version"]).status !== 0) {
    console.error("valgrind is not installed (apt-get install valgrind): nothing measured");
    process.exit(1);
  }
  const ops = Number(flag("ops") ?? 200_000);
  const warmup = Number(flag("warmup") ?? 100_000);
  console.log(`| operation | instructions / operation |\n| --- | ---: |`);
  for (const name of CASES) {
    const perOp = await measure(name, warmup, ops);
    console.log(`| ${name} | ${Math.round(perOp).toLocaleString("en-US")} |`);
  }
}
