import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Tmpfs {
  dir: string;
  /** Bytes still free for an unprivileged writer. */
  free(): number;
  /** Writes a filler file leaving about `leave` bytes free; returns a function that deletes it. */
  fill(leave: number): () => void;
  unmount(): void;
}

/**
 * A small tmpfs mounted at `dir` (needs root, as the driver disk-full tests do): a disk that
 * really fills up, ENOSPC from the kernel, freed again by deleting a file.
 *
 * @example
 * const disk = mountTmpfs(join(root, "tiny"), 8 * 1024 * 1024);
 * const release = disk.fill(256 * 1024);
 */
export function mountTmpfs(dir: string, bytes: number): Tmpfs {
  mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir]);
  let n = 0;
  const free = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    free,
    fill(leave) {
      const file = join(dir, `filler-${n++}`);
      writeFileSync(file, Buffer.alloc(Math.max(0, free() - leave)));
      return () => rmSync(file, { force: true });
    },
    unmount() {
      execFileSync("umount", ["-l", dir]);
    },
  };
}
