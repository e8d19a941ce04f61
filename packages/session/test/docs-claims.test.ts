import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * docs/security.md names, for each claim, the test file and the test titles that prove it
 * (`file.ts`: "title", "title"). Every one of them must exist, so a renamed or deleted test
 * cannot leave a claim standing without its proof.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const doc = readFileSync(join(root, "docs/security.md"), "utf8");

function locate(file: string): string | undefined {
  const candidates = file.includes("/")
    ? [join(root, file)]
    : [join(root, "packages/session/test", file), join(root, "reliability/test", file)];
  return candidates.find((c) => existsSync(c));
}

const citations: Array<{ file: string; title: string }> = [];
for (const m of doc.matchAll(/`([\w./-]+\.ts)`:\s*((?:"[^"]+"(?:,\s*)?)+)/g)) {
  for (const t of m[2]!.matchAll(/"([^"]+)"/g))
    citations.push({ file: m[1]!, title: t[1]!.replace(/\\_/g, "_") });
}

describe("docs/security.md cites tests that exist", () => {
  it("finds citations to check", () => {
    expect(citations.length).toBeGreaterThan(40);
  });
  it.each(citations)("$file: $title", ({ file, title }) => {
    const path = locate(file);
    expect(path, `${file} not found`).toBeDefined();
    expect(readFileSync(path!, "utf8")).toContain(title);
  });
});
