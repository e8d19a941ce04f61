// What the HTTP benchmark scripts share: where the repository is, and their command-line flags.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const httpDir = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(httpDir, "..", "..", "..");
export const args = process.argv.slice(2);
/** The value after `--name`, or undefined. */
export const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args[i + 1];
};
/**
 * Whether `--only text[|text]` picks the server named `name` ("framework: name"): it contains one of
 * the texts, or is exactly one written `=text`. Every name is picked without `--only`.
 */
export const pickedByOnly = (name: string): boolean => {
  const texts = flag("only")?.split("|");
  return (
    texts === undefined || texts.some((t) => (t.startsWith("=") ? name === t.slice(1) : name.includes(t)))
  );
};
