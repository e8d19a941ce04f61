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
