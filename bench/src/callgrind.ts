// What the callgrind counting scripts share: how valgrind is started and how its dumps are read.
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

/** valgrind's arguments before the program: callgrind, counting off until turned on, one dump per thread. */
export const callgrindArgs = (outFile: string): string[] => [
  "--tool=callgrind",
  "--instr-atstart=no",
  "--separate-threads=yes",
  `--callgrind-out-file=${outFile}`,
];

/** Each dump in `dir` with its instruction total and whether it is the main thread's, removing the files. */
function* dumps(dir: string): Generator<{ file: string; text: string; total: number; main: boolean }> {
  for (const file of readdirSync(dir)) {
    const text = readFileSync(join(dir, file), "utf8");
    rmSync(join(dir, file));
    const m = /^totals: (\d+)/m.exec(text);
    if (m) yield { file, text, total: Number(m[1]), main: /^thread: 1$/m.test(text) };
  }
}

/**
 * The main thread's instructions in the dumps in `dir` (JavaScript, the event loop, Node's C++,
 * scavenges), removing the files; `seen` gets each main-thread dump first. V8's helper threads
 * (optimising compiler, concurrent marking) are left out: how much of their work lands inside the
 * window depends on timing, not on the code measured.
 */
export function mainThreadTotal(dir: string, seen?: (file: string, text: string) => void): number {
  let total = 0;
  for (const d of dumps(dir))
    if (d.main) {
      total += d.total;
      seen?.(d.file, d.text);
    }
  return total;
}

/**
 * Every thread's instructions in the dumps in `dir`, the main thread's apart, removing the files;
 * `seen` gets every dump first. With V8's helper threads counted, the optimising compiler's work is
 * in the figure: meaningful for a window that starts with the process (the compiling it does then is
 * the same from run to run, give or take what lands just after the window's end).
 */
export function threadTotals(
  dir: string,
  seen?: (file: string, text: string) => void,
): { main: number; helpers: number } {
  const out = { main: 0, helpers: 0 };
  for (const d of dumps(dir)) {
    if (d.main) out.main += d.total;
    else out.helpers += d.total;
    seen?.(d.file, d.text);
  }
  return out;
}
