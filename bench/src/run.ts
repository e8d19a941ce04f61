// Runs the benchmark suites side by side and writes docs/benchmarks.md.
//   pnpm bench                      every suite, 3 repeats
//   pnpm bench --only memory,redis  some suites
//   pnpm bench --quick              a tenth of the operations, 1 repeat (smoke run)
// Our packages run from their built `dist/` (the root script builds first), as npm users get them and as
// the peers run from their published JavaScript; the TypeScript sources under tsx would carry its helpers.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { median } from "./median.js";
import type { BenchSuite, Interleaved, Measurement } from "./types.js";

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
  // Servers on core 1, load generator on core 0: otherwise the scheduler moves them
  // around and results jump up to 3x between runs (measured here).
  for (const proc of ["redis-server", "postgres"]) {
    const pids = spawnSync("pgrep", ["-x", proc], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    for (const pid of pids) spawnSync("taskset", ["-cp", "1", pid]);
  }
}

/** 1-minute load average before each measurement of the current suite: the machine is shared, so it is reported. */
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

function measureOnce(suite: string, index: number, inFlight: number, ops: number): number {
  return runChild<{ opsPerSec: number }>("child.ts", [suite, index, inFlight, ops, maxSeconds]).opsPerSec;
}

/** One interleaved run of two cases in one process (`pair-child.ts`): A ÷ B per pair of chunks. */
function measurePair(suite: string, a: number, b: number, inFlight: number, chunk: number): number[] {
  return runChild<{ ratios: number[] }>("pair-child.ts", [suite, a, b, inFlight, chunk, maxSeconds]).ratios;
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));

const label = (m: Measurement) => (m.scale ? `${m.name}, ${m.scale}` : m.name);

function table(suite: BenchSuite, ms: Measurement[]): string {
  const lines = [
    "| variant | in flight | case | role | ops/s (median) | vs limit | vs peer |",
    "| --- | ---: | --- | --- | ---: | ---: | ---: |",
  ];
  const verdicts: string[] = [];
  for (const m of ms) {
    const group = ms.filter(
      (x) => x.variant === m.variant && x.inFlight === m.inFlight && x.scale === m.scale,
    );
    const limit = group.find((x) => x.role === "limit" && (m.limit === undefined || x.name === m.limit));
    const peer = group.find((x) => x.role === "peer");
    const ours = median(m.opsPerSec);
    const ratio = (o?: Measurement) => (o && o !== m ? `${(ours / median(o.opsPerSec)).toFixed(2)}x` : "");
    lines.push(
      `| ${m.variant || "—"} | ${m.inFlight} | ${label(m)} | ${m.role} | ${fmt(ours)} | ${ratio(limit)} | ${ratio(peer)} |`,
    );
    const targets =
      typeof suite.targets === "function" ? suite.targets(m.variant, m.inFlight) : suite.targets;
    if (m.role === "ours" && targets) {
      for (const [role, want] of Object.entries(targets)) {
        const other = role === "limit" ? limit : group.find((x) => x.role === role);
        if (!other || want === undefined) continue;
        const separate = ours / median(other.opsPerSec);
        const il = m.interleaved?.[role as "limit" | "peer"];
        const got = il ? median(il.ratios) : separate;
        verdicts.push(
          `- ${m.variant ? `${m.variant}, ${m.name}` : m.name}${m.scale ? `, ${m.scale}` : ""}, ${m.inFlight} in flight: ${got.toFixed(2)}x ${role} (target ≥ ${want}x) — ${got >= want ? "met" : "**not met**"}${il ? interleavedNote(il, separate) : ""}`,
        );
      }
    }
  }
  return [...lines, "", ...verdicts, ...scaleTable(ms)].join("\n");
}

const x2 = (n: number) => `${n.toFixed(2)}x`;
const spread = (xs: number[]) => `${x2(Math.min(...xs))}–${x2(Math.max(...xs))}`;

function interleavedMethod(suite: BenchSuite): string {
  const il = suite.interleaved;
  if (il === undefined) return "";
  return (
    `. At ${il.inFlight.join(" and ")} in flight the verdicts come from interleaved runs: ours and the case it is judged against ` +
    `in one process (${repeats} runs of up to ${maxSeconds} s after a 1 s warm-up), alternating chunks of ${il.chunk} operations, ` +
    "each pair in alternate order; the verdict is the median over all pairs of ours' ops/s ÷ the other's, and the same " +
    "done with the other case against a second copy of itself is given as a control"
  );
}

function interleavedNote(il: Interleaved, separate: number): string {
  return (
    `; interleaved in one process: median of ${il.ratios.length} chunk pairs over ${il.runs.length} runs ` +
    `(run medians ${spread(il.runs)}; the other case against itself read ${x2(median(il.control))}, ` +
    `runs ${spread(il.control)}); separate processes, ratio of medians: ${x2(separate)}`
  );
}

/**
 * Each case's ops/s at every scale side by side, and the ratio of the last scale to the first,
 * taken within each repeat (the scales run interleaved, so a repeat's two figures saw the same
 * machine conditions) and reported as the median and range over the repeats.
 */
function scaleTable(ms: Measurement[]): string[] {
  const scales = [...new Set(ms.flatMap((m) => (m.scale ? [m.scale] : [])))];
  if (scales.length < 2) return [];
  const lines = [
    "",
    `| variant | in flight | case | ${scales.map((s) => `${s}: ops/s`).join(" | ")} | ${scales.at(-1)} / ${scales[0]} | range over repeats |`,
    `| --- | ---: | --- | ${scales.map(() => "---:").join(" | ")} | ---: | ---: |`,
  ];
  const seen = new Set<string>();
  for (const m of ms) {
    const id = JSON.stringify([m.variant, m.inFlight, m.name]);
    if (seen.has(id)) continue;
    seen.add(id);
    const at = scales.map((s) =>
      ms.find(
        (x) => x.scale === s && x.variant === m.variant && x.inFlight === m.inFlight && x.name === m.name,
      ),
    );
    const first = at[0];
    const last = at.at(-1);
    const ratios = first && last ? first.opsPerSec.map((f, r) => last.opsPerSec[r]! / f) : [];
    const times = (n: number) => `${n.toFixed(2)}x`;
    const ratio = ratios.length
      ? `${times(median(ratios))} | ${times(Math.min(...ratios))}–${times(Math.max(...ratios))}`
      : " | ";
    lines.push(
      `| ${m.variant || "—"} | ${m.inFlight} | ${m.name} | ${at.map((x) => (x ? fmt(median(x.opsPerSec)) : "")).join(" | ")} | ${ratio} |`,
    );
  }
  return lines;
}

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
    for (const role of ["limit", "peer"] as const) {
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
const stamp = new Date().toISOString().slice(0, 16).replace("T", " ");
for (const name of names) {
  const suite = (await import(`./suites/${name}.ts`)).default as BenchSuite;
  const ops = quick ? Math.max(1000, Math.floor(suite.ops / 10)) : suite.ops;
  const results: Measurement[] = [];
  loads = [];
  const variants = [...new Set(suite.cases.map((c) => c.variant ?? ""))];
  console.log(`\n## ${suite.title}`);
  await suite.prepare?.();
  try {
    for (const variant of variants) {
      for (const inFlight of suite.inFlight) {
        const group = suite.cases
          .map((c, index) => ({ c, index }))
          .filter(({ c }) => (c.variant ?? "") === variant);
        const rows = group.map(({ c }) => ({
          suite: name,
          variant,
          inFlight,
          name: c.name,
          role: c.role,
          scale: c.scale,
          limit: c.limit,
          opsPerSec: [] as number[],
        }));
        // Interleave the repeats so every case sees the same machine conditions.
        for (let r = 0; r < repeats; r++) {
          for (const [k, { index }] of group.entries())
            rows[k]!.opsPerSec.push(measureOnce(name, index, inFlight, ops));
        }
        for (const row of rows)
          console.log(`${variant || "-"} x${inFlight} ${label(row)}: ${fmt(median(row.opsPerSec))} ops/s`);
        if (suite.interleaved?.inFlight.includes(inFlight))
          interleave(suite, name, inFlight, group, rows, suite.interleaved.chunk);
        results.push(...rows);
      }
    }
  } finally {
    await suite.finish?.();
  }
  writeFileSync(join(here, "..", "results", `${name}.json`), JSON.stringify(results, null, 2));
  const section = [
    `<!-- bench:${name}:start -->`,
    `## ${suite.title}`,
    "",
    `Measured ${stamp} UTC with \`pnpm bench --only ${name}${quick ? " --quick" : ""}${flag("repeats") ? ` --repeats ${repeats}` : ""}${flag("max-seconds") ? ` --max-seconds ${maxSeconds}` : ""}\`: ${ops} operations (or ${maxSeconds} s including the warm-up, whichever ends first) per measurement after a warm-up (a tenth of the operations, and at least 1 s), each in a fresh child process${hasTaskset ? " pinned to core 0 (servers pinned to core 1)" : ""}, median of ${repeats}${interleavedMethod(suite)}; load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}.`,
    "",
    table(suite, results),
    "",
    suite.notes ?? "",
    `<!-- bench:${name}:end -->`,
  ].join("\n");
  let doc = existsSync(docPath) ? readFileSync(docPath, "utf8") : "# Benchmarks\n";
  const re = new RegExp(`<!-- bench:${name}:start -->[\\s\\S]*?<!-- bench:${name}:end -->`);
  doc = re.test(doc) ? doc.replace(re, section) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(docPath, doc);
  console.log(table(suite, results));
}
