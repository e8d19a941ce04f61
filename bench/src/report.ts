// Renders one suite's section of docs/benchmarks.md: what it measures, one table, how to reproduce.
import { median } from "./median.js";
import type { BenchSuite, Interleaved, Measurement } from "./types.js";

/** How a suite's measurements were taken, stored beside them in bench/results/<suite>.json. */
export interface RunMeta {
  date: string;
  ops: number;
  repeats: number;
  maxSeconds: number;
  quick: boolean;
  /** The flags to give `pnpm bench --only <suite>` to run it the same way. */
  flags: string;
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
const x2 = (n: number) => `${n.toFixed(2)}x`;

const inFlightLabel = (m: Measurement) => `${m.inFlight}${m.pattern === "batches" ? ", batches" : ""}`;

const sameGroup = (a: Measurement, b: Measurement) =>
  a.variant === b.variant && a.inFlight === b.inFlight && a.pattern === b.pattern && a.scale === b.scale;

function targetsOf(suite: BenchSuite, m: Measurement) {
  return (typeof suite.targets === "function" ? suite.targets(m.variant, m.inFlight) : suite.targets) ?? {};
}

/** The limit and the peer a row is compared with (never itself). */
function basesOf(ms: Measurement[], m: Measurement) {
  const group = ms.filter((x) => sameGroup(x, m));
  const limit = group.find((x) => x.role === "limit" && (m.limit === undefined || x.name === m.limit));
  const peer = group.find((x) => x.role === "peer");
  return { limit: limit === m ? undefined : limit, peer: peer === m ? undefined : peer };
}

/** Ours ÷ the other: from the interleaved runs when there are some (marked *), else the ratio of medians. */
function ratio(m: Measurement, other: Measurement | undefined, role: "limit" | "peer") {
  if (other === undefined) return undefined;
  const il: Interleaved | undefined = m.interleaved?.[role];
  if (il) return { value: median(il.ratios), interleaved: true };
  return { value: median(m.opsPerSec) / median(other.opsPerSec), interleaved: false };
}

const cell = (r: ReturnType<typeof ratio>) => (r ? `${x2(r.value)}${r.interleaved ? " *" : ""}` : "");

function targetCell(suite: BenchSuite, ms: Measurement[], m: Measurement): string {
  if (m.role !== "ours") return "";
  const bases = basesOf(ms, m);
  const targets = targetsOf(suite, m);
  const out: string[] = [];
  for (const role of m.judge ?? (["limit", "peer"] as const)) {
    const want = targets[role];
    const r = ratio(m, bases[role], role);
    if (want === undefined || r === undefined) continue;
    out.push(`≥ ${want}x ${role}: ${r.value >= want ? "met" : "**not met**"}`);
  }
  return out.join("; ");
}

function flatTable(suite: BenchSuite, ms: Measurement[]): string {
  const lines = [
    "| variant | in flight | case | role | ops/s | vs limit | vs peer | target |",
    "| --- | ---: | --- | --- | ---: | ---: | ---: | --- |",
  ];
  for (const m of ms) {
    const { limit, peer } = basesOf(ms, m);
    lines.push(
      `| ${m.variant || "—"} | ${inFlightLabel(m)} | ${m.name} | ${m.role} | ${fmt(median(m.opsPerSec))} | ${cell(ratio(m, limit, "limit"))} | ${cell(ratio(m, peer, "peer"))} | ${targetCell(suite, ms, m)} |`,
    );
  }
  return lines.join("\n");
}

/**
 * Each case's ops/s at every scale side by side, the ratio of the last scale to the first taken
 * within each repeat (the scales run interleaved, so a repeat's figures saw the same machine) as the
 * median and range over the repeats, and the ratio to the limit at each scale.
 */
function scaleTable(ms: Measurement[], scales: string[]): string {
  const lines = [
    `| variant | in flight | case | role | ${scales.map((s) => `${s}: ops/s`).join(" | ")} | ${scales.at(-1)} / ${scales[0]} | range over repeats | ${scales.map((s) => `vs limit, ${s}`).join(" | ")} |`,
    `| --- | ---: | --- | --- | ${scales.map(() => "---:").join(" | ")} | ---: | ---: | ${scales.map(() => "---:").join(" | ")} |`,
  ];
  const seen = new Set<string>();
  for (const m of ms) {
    const id = JSON.stringify([m.variant, m.inFlight, m.pattern, m.name]);
    if (seen.has(id)) continue;
    seen.add(id);
    const at = scales.map((s) =>
      ms.find(
        (x) =>
          x.scale === s &&
          x.variant === m.variant &&
          x.inFlight === m.inFlight &&
          x.pattern === m.pattern &&
          x.name === m.name,
      ),
    );
    const first = at[0];
    const last = at.at(-1);
    const ratios = first && last ? first.opsPerSec.map((f, r) => last.opsPerSec[r]! / f) : [];
    const flat = ratios.length
      ? `${x2(median(ratios))} | ${x2(Math.min(...ratios))}–${x2(Math.max(...ratios))}`
      : " | ";
    const vsLimit = at.map((x) => (x ? cell(ratio(x, basesOf(ms, x).limit, "limit")) : ""));
    lines.push(
      `| ${m.variant || "—"} | ${inFlightLabel(m)} | ${m.name} | ${m.role} | ${at.map((x) => (x ? fmt(median(x.opsPerSec)) : "")).join(" | ")} | ${flat} | ${vsLimit.join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

/** What the interleaved runs are and how much the method itself reads for two equal cases. */
function interleavedNote(suite: BenchSuite, ms: Measurement[], meta: RunMeta): string {
  const il = suite.interleaved;
  const controls = ms.flatMap((m) => Object.values(m.interleaved ?? {}).flatMap((i) => i.control));
  if (il === undefined || controls.length === 0) return "";
  return `\\* At ${il.inFlight.join(" and ")} in flight a difference of a few percent is below what separates two processes of the same case, so our rows' ratios there come from both cases measured in one process, alternating chunks of ${il.chunk} operations in alternating order (${meta.repeats} run${meta.repeats === 1 ? "" : "s"} of up to ${meta.maxSeconds} s after a 1 s warm-up): the median of the per-pair ratios. The compared case measured the same way against a copy of itself read ${x2(Math.min(...controls))}–${x2(Math.max(...controls))}. The ops/s column is from the separate processes.\n\n`;
}

export function renderSuiteSection(
  name: string,
  suite: BenchSuite,
  ms: Measurement[],
  meta: RunMeta,
): string {
  const scales = [...new Set(ms.flatMap((m) => (m.scale ? [m.scale] : [])))];
  return [
    `<!-- bench:${name}:start -->`,
    `## ${suite.title}`,
    "",
    suite.notes ?? "",
    "",
    scales.length > 1 ? scaleTable(ms, scales) : flatTable(suite, ms),
    "",
    `${interleavedNote(suite, ms, meta)}Reproduce: \`pnpm bench --only ${name}${meta.flags}\`. Last run ${meta.date}: ${meta.ops.toLocaleString("en-US")} operations per measurement (or ${meta.maxSeconds} s, whichever ends first), median of ${meta.repeats}${meta.quick ? " (a `--quick` run: read its figures as indicative only)" : ""}.`,
    `<!-- bench:${name}:end -->`,
  ].join("\n");
}
