// Runs the benchmark suites side by side and writes their sections of docs/benchmarks.md.
//   pnpm bench                      every suite, 3 repeats
//   pnpm bench --only memory,redis  some suites
//   pnpm bench --quick              a tenth of the operations, 1 repeat (smoke run)
//   pnpm bench --max-seconds N      cap every measurement at N s (default 20)
//   pnpm bench --only memory --render   re-render a section from bench/results/memory.json, measuring nothing
// Our packages run from their built `dist/` (the root script builds first), as npm users get them and as
// the peers run from their published JavaScript; the TypeScript sources under tsx would carry its helpers.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { median } from "./median.js";
import { type RunMeta, renderSuiteSection } from "./report.js";
import type { BenchSuite, Measurement, Pattern } from "./types.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : (args[i + 1] ?? "");
};
const quick = args.includes("--quick");
const repeats = Number(flag("repeats") ?? (quick ? 1 : 3));
const maxSeconds = Number(flag("max-seconds") ?? 20);
const only = flag("only")?.split(",");

const available = readdirSync(join(here, "suites"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.slice(0, -3))
  .sort();
const names = only ?? available;
for (const n of names)
  if (!available.includes(n)) throw new Error(`no suite "${n}"; have: ${available.join(", ")}`);

const hasTaskset = spawnSync("taskset", ["-V"]).status === 0 && cpus().length >= 2;
if (hasTaskset) {
  // Servers on core 1, load generator on core 0: otherwise the scheduler moves them around and
  // results jump between runs. The suites that start servers of their own pin them; the shared
  // ones are pinned only when a suite selected uses them.
  const shared = [
    ...(names.some((n) => n.startsWith("postgres")) ? ["postgres"] : []),
    ...(process.env.REDIS_URL !== undefined && names.some((n) => n.startsWith("redis"))
      ? ["redis-server"]
      : []),
  ];
  for (const proc of shared) {
    const pids = spawnSync("pgrep", ["-x", proc], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    for (const pid of pids) spawnSync("taskset", ["-cp", "1", pid]);
  }
}

/** 1-minute load average before each measurement of the current suite, printed at its end (the machine is shared). */
let loads: number[] = [];

/** Runs a measuring script of this folder in a fresh process (on core 0 when pinned); returns its last line, parsed. */
function runChild<T>(script: string, args: Array<string | number>): T {
  loads.push(loadavg()[0]!);
  const cmd = [process.execPath, "--import", "tsx", join(here, script), ...args.map(String)];
  const [file, ...rest] = hasTaskset ? ["taskset", "-c", "0", ...cmd] : cmd;
  const out = execFileSync(file!, rest, {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").pop()!) as T;
}

function measureOnce(suite: string, index: number, inFlight: number, pattern: Pattern, ops: number): number {
  return runChild<{ opsPerSec: number }>("child.ts", [suite, index, inFlight, ops, maxSeconds, pattern])
    .opsPerSec;
}

/** One interleaved run of two cases in one process (`pair-child.ts`): A ÷ B per pair of chunks. */
function measurePair(suite: string, a: number, b: number, inFlight: number, chunk: number): number[] {
  return runChild<{ ratios: number[] }>("pair-child.ts", [suite, a, b, inFlight, chunk, maxSeconds]).ratios;
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
const label = (m: Measurement) => `${m.name}${m.scale ? `, ${m.scale}` : ""}`;
const x2 = (n: number) => `${n.toFixed(2)}x`;
const spread = (xs: number[]) => `${x2(Math.min(...xs))}–${x2(Math.max(...xs))}`;

/**
 * For each target of each "ours" row: `repeats` interleaved runs against the other case, and as many
 * of the other case against a second copy of itself (the control). Rows sharing a limit share its control.
 */
function interleave(
  suite: BenchSuite,
  name: string,
  inFlight: number,
  group: Array<{ c: BenchSuite["cases"][number]; index: number }>,
  rows: Measurement[],
  chunk: number,
): void {
  const controls = new Map<number, number[]>();
  for (const [k, { c, index }] of group.entries()) {
    if (c.role !== "ours") continue;
    const targets =
      typeof suite.targets === "function" ? suite.targets(c.variant ?? "", inFlight) : suite.targets;
    const row = rows[k]!;
    for (const role of c.judge ?? (["limit", "peer"] as const)) {
      if (targets?.[role] === undefined) continue;
      const other = group.find(
        ({ c: o }) => o.role === role && (role !== "limit" || c.limit === undefined || o.name === c.limit),
      );
      if (other === undefined) continue;
      const ratios: number[] = [];
      const runs: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const got = measurePair(name, index, other.index, inFlight, chunk);
        ratios.push(...got);
        runs.push(median(got));
      }
      let control = controls.get(other.index);
      if (control === undefined) {
        control = [];
        for (let r = 0; r < repeats; r++)
          control.push(median(measurePair(name, other.index, other.index, inFlight, chunk)));
        controls.set(other.index, control);
      }
      row.interleaved = { ...row.interleaved, [role]: { ratios, runs, control } };
      console.log(
        `${c.variant || "-"} x${inFlight} ${c.name} / ${other.c.name}, interleaved: ${x2(median(ratios))} (runs ${spread(runs)}; control ${x2(median(control))})`,
      );
    }
  }
}

const docPath = join(root, "docs", "benchmarks.md");
const render = args.includes("--render");
const resultsOf = (name: string) => join(here, "..", "results", `${name}.json`);

function writeSection(section: string, name: string): void {
  let doc = existsSync(docPath) ? readFileSync(docPath, "utf8") : "# Benchmarks\n";
  const re = new RegExp(`<!-- bench:${name}:start -->[\\s\\S]*?<!-- bench:${name}:end -->`);
  doc = re.test(doc) ? doc.replace(re, section) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(docPath, doc);
}

for (const name of names) {
  const suite = (await import(`./suites/${name}.ts`)).default as BenchSuite;
  if (render) {
    const { meta, results } = JSON.parse(readFileSync(resultsOf(name), "utf8")) as {
      meta: RunMeta;
      results: Measurement[];
    };
    writeSection(renderSuiteSection(name, suite, results, meta), name);
    console.log(`re-rendered the ${name} section from ${resultsOf(name)}`);
    continue;
  }
  const ops = quick ? Math.max(1000, Math.floor(suite.ops / 10)) : suite.ops;
  const results: Measurement[] = [];
  loads = [];
  const variants = [...new Set(suite.cases.map((c) => c.variant ?? ""))];
  const drives: Array<[number, Pattern]> = [
    ...suite.inFlight.map((n): [number, Pattern] => [n, "continuous"]),
    ...(suite.batches ?? []).map((n): [number, Pattern] => [n, "batches"]),
  ];
  console.log(`\n## ${suite.title}`);
  await suite.prepare?.();
  try {
    for (const variant of variants) {
      for (const [inFlight, pattern] of drives) {
        const group = suite.cases
          .map((c, index) => ({ c, index }))
          .filter(({ c }) => (c.variant ?? "") === variant);
        const rows: Measurement[] = group.map(({ c }) => ({
          suite: name,
          variant,
          inFlight,
          pattern,
          name: c.name,
          role: c.role,
          scale: c.scale,
          limit: c.limit,
          judge: c.judge,
          opsPerSec: [] as number[],
        }));
        // Interleave the repeats so every case sees the same machine conditions.
        for (let r = 0; r < repeats; r++) {
          for (const [k, { index }] of group.entries())
            rows[k]!.opsPerSec.push(measureOnce(name, index, inFlight, pattern, ops));
        }
        const at = `${variant || "-"} x${inFlight}${pattern === "batches" ? " (batches)" : ""}`;
        for (const row of rows) console.log(`${at} ${label(row)}: ${fmt(median(row.opsPerSec))} ops/s`);
        if (pattern === "continuous" && suite.interleaved?.inFlight.includes(inFlight))
          interleave(suite, name, inFlight, group, rows, suite.interleaved.chunk);
        results.push(...rows);
      }
    }
  } finally {
    await suite.finish?.();
  }
  const meta: RunMeta = {
    date: new Date().toISOString().slice(0, 10),
    ops,
    repeats,
    maxSeconds,
    quick,
    flags: `${quick ? " --quick" : ""}${flag("repeats") ? ` --repeats ${repeats}` : ""}${flag("max-seconds") ? ` --max-seconds ${maxSeconds}` : ""}`,
  };
  writeFileSync(resultsOf(name), JSON.stringify({ meta, results }, null, 2));
  const section = renderSuiteSection(name, suite, results, meta);
  writeSection(section, name);
  console.log(section);
  console.log(
    `load average (1 min) before each measurement: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
  );
}
