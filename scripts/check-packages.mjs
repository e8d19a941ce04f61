#!/usr/bin/env node
// Checks the packages as a user gets them, outside the workspace:
//  1. builds and packs every public package (`pnpm pack` rewrites workspace: ranges);
//  2. runs publint and @arethetypeswrong/cli (ESM-only profile) on each tarball;
//  3. installs the tarballs with plain npm into a scratch app in a temp dir, with the third-party
//     packages the examples import (versions from the workspace's own manifests);
//  4. extracts the TypeScript code blocks of every package README, the root README and docs/*.md,
//     type-checks them there with `strict` and `skipLibCheck: false` under moduleResolution node16
//     and bundler, runs the runnable ones with node (a server example gets two requests, see
//     check-packages-server.mjs) and the test blocks with vitest (the driver recipe's conformance
//     test among them).
// Prints one line per check, a summary, and exits non-zero on any failure.
//
// How a code block is marked (the fence's info string, after the language; GitHub and npm show only
// the language):
//   ```ts               a complete program: type-checked and run with node (must exit by itself,
//                       or listen: then it gets two requests to "/" and must answer 2xx)
//   ```ts fragment      an illustrative excerpt: not checked
//   ```ts compile       type-checked only, never run
//   ```ts file=NAME.ts  a module the document's other blocks import ("./NAME.js"): type-checked only
//   ```ts test          a vitest test file: type-checked and run with vitest
// Every package README needs at least one block that runs. A block that reads process.env.REDIS_URL
// or DATABASE_URL needs that service: without it the block is skipped, or fails when CI is set.
//
// Usage: node scripts/check-packages.mjs [--no-build] [--keep] [--only <substring of a document path>]

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const only = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : undefined;
const inCI = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false";
const started = Date.now();

/** @type {{ group: string, name: string, status: "pass" | "fail" | "skip", detail?: string }[]} */
const results = [];
function record(group, name, status, detail) {
  results.push({ group, name, status, detail });
  const mark = status === "pass" ? "ok  " : status === "skip" ? "skip" : "FAIL";
  console.log(`${mark} ${group}: ${name}${detail && status !== "pass" ? `\n${indent(detail)}` : ""}`);
}
const indent = (text, by = "       ") =>
  text
    .trimEnd()
    .split("\n")
    .map((l) => by + l)
    .join("\n");
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const log = (text) => console.log(`\n== ${text} (${seconds(Date.now() - started)})`);

/** Process groups of the commands still running, ended if the check stops early. */
const running = new Set();

/** Runs a command; resolves with its exit code and combined output (never rejects). */
function run(cmd, args, { cwd = root, env = process.env, timeoutMs = 600_000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    if (child.pid !== undefined) running.add(child.pid);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ code: -1, out: `${out}${err.message}\n` });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child.pid);
      resolve({
        code: timedOut ? -1 : (code ?? -1),
        out: timedOut ? `${out}\n(timed out after ${seconds(timeoutMs)})` : out,
      });
    });
  });
}

/** Maps `fn` over `items` with at most `limit` running at once. */
async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

const readJson = async (file) => JSON.parse(await readFile(file, "utf8"));
const tail = (text, lines = 30) => text.trimEnd().split("\n").slice(-lines).join("\n");

// ---------------------------------------------------------------------------------------------------
// Workspace: public packages, and the versions the workspace itself uses for third-party packages.

const packageDirs = (await readdir(path.join(root, "packages"), { withFileTypes: true }))
  .filter((d) => d.isDirectory() && existsSync(path.join(root, "packages", d.name, "package.json")))
  .map((d) => path.join(root, "packages", d.name))
  .sort();
const packages = [];
for (const dir of packageDirs) {
  const manifest = await readJson(path.join(dir, "package.json"));
  if (manifest.private !== true) packages.push({ dir, manifest, name: manifest.name });
}
const ours = new Set(packages.map((p) => p.name));

/** The range the workspace uses for a third-party package (root first, then the packages). */
const workspaceRanges = new Map();
for (const file of [
  path.join(root, "package.json"),
  ...packageDirs.map((d) => path.join(d, "package.json")),
]) {
  const m = await readJson(file);
  for (const field of ["devDependencies", "dependencies", "peerDependencies"])
    for (const [name, range] of Object.entries(m[field] ?? {}))
      if (!ours.has(name) && !workspaceRanges.has(name) && !String(range).startsWith("workspace:"))
        workspaceRanges.set(name, range);
}
const typescriptVersion = (await readJson(path.join(root, "node_modules/typescript/package.json"))).version;

// ---------------------------------------------------------------------------------------------------
// Documents and their code blocks.

const CODE_LANGS = new Set(["ts", "typescript", "mts", "js", "javascript", "mjs"]);
const KINDS = new Set(["fragment", "compile", "test"]);

/** Fenced code blocks of a markdown file, with their info-string attributes. */
function codeBlocks(text) {
  const lines = text.split("\n");
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    const words = open[2].trim().split(/\s+/).filter(Boolean);
    let end = i + 1;
    while (end < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[end]))
      end++;
    const lang = (words[0] ?? "").toLowerCase();
    const attrs = {};
    for (const w of words.slice(1)) {
      const [k, ...v] = w.split("=");
      attrs[k] = v.length > 0 ? v.join("=") : true;
    }
    blocks.push({ line: i + 1, lang, attrs, code: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return blocks;
}

const docFiles = [
  "README.md",
  ...packages.map((p) => path.relative(root, path.join(p.dir, "README.md"))),
  ...(await readdir(path.join(root, "docs")))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
].filter((f) => existsSync(path.join(root, f)) && (only === undefined || f.includes(only)));

const docs = [];
for (const file of docFiles) {
  const slug = file
    .replace(/\.md$/, "")
    .replace(/[^A-Za-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
  const blocks = [];
  for (const b of codeBlocks(await readFile(path.join(root, file), "utf8"))) {
    if (!CODE_LANGS.has(b.lang)) continue;
    const where = `${file}:${b.line}`;
    const unknown = Object.keys(b.attrs).filter((k) => !KINDS.has(k) && k !== "file");
    if (unknown.length > 0) {
      record(
        "docs",
        where,
        "fail",
        `unknown marker(s) ${unknown.join(", ")} (known: ${[...KINDS].join(", ")}, file=NAME)`,
      );
      continue;
    }
    const kind = b.attrs.fragment
      ? "fragment"
      : b.attrs.test
        ? "test"
        : b.attrs.file
          ? "module"
          : b.attrs.compile
            ? "compile"
            : "run";
    const ext = b.lang.startsWith("j") || b.lang === "mjs" ? ".js" : ".ts";
    const name =
      typeof b.attrs.file === "string"
        ? b.attrs.file
        : `block-L${b.line}${kind === "test" ? ".test" : ""}${ext}`;
    if (kind === "test" && !/\.test\.[mc]?[jt]s$/.test(name)) {
      record("docs", where, "fail", `a test block's file name must end in .test.ts (got ${name})`);
      continue;
    }
    const needs = [];
    if (/process\.env\.REDIS_URL/.test(b.code)) needs.push("redis");
    if (/process\.env\.DATABASE_URL/.test(b.code)) needs.push("postgres");
    blocks.push({ ...b, where, kind, name, needs });
  }
  docs.push({ file, slug, blocks, isPackageReadme: /^packages\/[^/]+\/README\.md$/.test(file) });
}

const checked = docs.flatMap((d) =>
  d.blocks.filter((b) => b.kind !== "fragment").map((b) => ({ doc: d, block: b })),
);
for (const d of docs) {
  if (d.isPackageReadme && !d.blocks.some((b) => b.kind === "run" || b.kind === "test"))
    record(
      "docs",
      d.file,
      "fail",
      "a package README needs at least one runnable example (a ```ts block that is not marked fragment/compile/file=)",
    );
}

// ---------------------------------------------------------------------------------------------------

const tmp = await mkdtemp(path.join(tmpdir(), "kvsession-check-"));
const tarballs = path.join(tmp, "tarballs");
const app = path.join(tmp, "app");
await mkdir(tarballs, { recursive: true });
await mkdir(app, { recursive: true });
let exiting = false;
async function finish() {
  if (exiting) return;
  exiting = true;
  for (const pid of running) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {}
  }
  const failed = results.filter((r) => r.status === "fail");
  const skipped = results.filter((r) => r.status === "skip");
  const passed = results.filter((r) => r.status === "pass");
  console.log(`\n== summary (${seconds(Date.now() - started)})`);
  const groups = [...new Set(results.map((r) => r.group))];
  for (const g of groups) {
    const rs = results.filter((r) => r.group === g);
    const f = rs.filter((r) => r.status === "fail").length;
    const s = rs.filter((r) => r.status === "skip").length;
    console.log(`${g.padEnd(12)} ${rs.length - f - s} passed, ${f} failed${s > 0 ? `, ${s} skipped` : ""}`);
  }
  for (const r of failed) console.log(`  FAIL ${r.group}: ${r.name}`);
  for (const r of skipped) console.log(`  skip ${r.group}: ${r.name}${r.detail ? ` (${r.detail})` : ""}`);
  if (flag("--keep")) console.log(`scratch kept in ${tmp}`);
  else await rm(tmp, { recursive: true, force: true }).catch(() => {});
  console.log(`package check: ${passed.length} passed, ${failed.length} failed`);
  process.exit(failed.length > 0 ? 1 : 0);
}
process.on("SIGINT", () => void finish());
process.on("SIGTERM", () => void finish());

// 1. Build and pack.
if (!flag("--no-build")) {
  log("build (pnpm build)");
  const r = await run("pnpm", ["build"]);
  if (r.code !== 0) {
    record("build", "pnpm build", "fail", tail(r.out));
    await finish();
  }
  record("build", "pnpm build", "pass");
}

log(`pack ${packages.length} packages`);
const tarballOf = new Map();
await pool(packages, 3, async (p) => {
  const r = await run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: p.dir });
  const file = path.join(tarballs, `${p.name.replace(/^@/, "").replace("/", "-")}-${p.manifest.version}.tgz`);
  if (r.code !== 0 || !existsSync(file)) record("pack", p.name, "fail", tail(r.out));
  else {
    tarballOf.set(p.name, file);
    record("pack", p.name, "pass");
  }
});
if (tarballOf.size !== packages.length) await finish();

// 2. publint and attw on the tarballs (both run offline), while npm installs the scratch app.
const bin = (name) => path.join(root, "node_modules/.bin", name);
const linting = pool(packages, 2, async (p) => {
  const tgz = tarballOf.get(p.name);
  const lint = await run(bin("publint"), ["run", "--strict", tgz]);
  record("publint", p.name, lint.code === 0 ? "pass" : "fail", tail(lint.out));
  const types = await run(bin("attw"), [
    tgz,
    "--profile",
    "esm-only",
    "--format",
    "ascii",
    "--no-emoji",
    "--no-color",
  ]);
  record("attw", p.name, types.code === 0 ? "pass" : "fail", tail(types.out, 40));
});

// 3. The scratch app: the tarballs, and what the examples import, installed with plain npm.
const BUILTIN = /^node:/;
const imported = new Set();
for (const { block } of checked) {
  for (const m of block.code.matchAll(
    /(?:^|\s)(?:import|export)\s[^"']*?from\s*["']([^"'./][^"']*)["']|import\(\s*["']([^"'./][^"']*)["']\s*\)|^import\s+["']([^"'./][^"']*)["']/gm,
  )) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (BUILTIN.test(spec)) continue;
    const parts = spec.split("/");
    imported.add(spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]);
  }
}
const dependencies = {};
for (const p of packages) dependencies[p.name] = `file:${path.relative(app, tarballOf.get(p.name))}`;
const devDependencies = {
  typescript: typescriptVersion,
  "@types/node": workspaceRanges.get("@types/node") ?? "^20",
};
if (checked.some((c) => c.block.kind === "test")) devDependencies.vitest = workspaceRanges.get("vitest");
const missing = [];
for (const name of [...imported].sort()) {
  if (ours.has(name)) continue;
  const range = workspaceRanges.get(name);
  if (range === undefined) missing.push(name);
  else dependencies[name] = range;
  const types = `@types/${name.replace(/^@/, "").replace("/", "__")}`;
  if (workspaceRanges.has(types)) devDependencies[types] = workspaceRanges.get(types);
}
if (missing.length > 0)
  record(
    "install",
    "example imports",
    "fail",
    `no workspace manifest names a version of: ${missing.join(", ")}`,
  );
await writeFile(
  path.join(app, "package.json"),
  `${JSON.stringify({ name: "kvsession-outside-app", private: true, type: "module", dependencies, devDependencies }, null, 2)}\n`,
);

/**
 * npm's environment: its cache in the temp dir (nothing is kept between runs), and node-gyp pointed at
 * the running Node's own headers so native builds need no download, as .pnpmfile.cjs does for pnpm
 * (unless npm_config_nodedir is set already).
 */
async function npmEnv() {
  const env = {
    ...process.env,
    npm_config_cache: path.join(tmp, "npm-cache"),
    npm_config_update_notifier: "false",
  };
  if (Object.keys(env).some((k) => k.toLowerCase() === "npm_config_nodedir")) return env;
  const prefix = path.resolve(path.dirname(process.execPath), "..");
  const headers = path.join(prefix, "include", "node");
  try {
    const h = await readFile(path.join(headers, "node_version.h"), "utf8");
    const part = (n) => h.match(new RegExp(`#define NODE_${n}_VERSION (\\d+)`))?.[1];
    if (
      existsSync(path.join(headers, "common.gypi")) &&
      `${part("MAJOR")}.${part("MINOR")}.${part("PATCH")}` === process.versions.node
    )
      env.npm_config_nodedir = prefix;
  } catch {}
  return env;
}
// Download and unpack first; the install scripts (better-sqlite3 compiles with node-gyp, a minute or
// more) then run while the examples are type-checked, which does not need them.
log("scratch app: npm install, publint and attw");
const env = await npmEnv();
const installStart = Date.now();
const install = await run(
  "npm",
  ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
  {
    cwd: app,
    env,
    timeoutMs: 900_000,
  },
);
if (install.code !== 0) {
  record("install", "npm install (tarballs + example dependencies)", "fail", tail(install.out, 40));
  await linting;
  await finish();
}
record("install", `npm install --ignore-scripts (${seconds(Date.now() - installStart)})`, "pass");
const rebuildStart = Date.now();
const rebuilding = run("npm", ["rebuild", "--no-audit", "--no-fund", "--loglevel=error"], {
  cwd: app,
  env,
  timeoutMs: 900_000,
}).then((r) => {
  record(
    "install",
    `npm rebuild: install scripts, native builds (${seconds(Date.now() - rebuildStart)})`,
    r.code === 0 ? "pass" : "fail",
    tail(r.out, 40),
  );
  return r.code === 0;
});
await linting;

// 4. Examples: type-check under node16 and bundler, then run.
log(`examples: type-check ${checked.length} blocks of ${docs.length} documents (node16, bundler)`);
for (const { doc, block } of checked) {
  const file = path.join(app, "docs", doc.slug, block.name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${block.code}\n`);
}
for (const d of docs)
  for (const b of d.blocks)
    if (b.kind === "fragment") record("docs", b.where, "skip", "marked fragment: not checked");

const common = {
  target: "es2022",
  strict: true,
  skipLibCheck: false,
  moduleDetection: "force",
  allowJs: true,
  checkJs: true,
};
const configs = {
  node16: { ...common, module: "node16", moduleResolution: "node16", outDir: "out", rootDir: "docs" },
  bundler: { ...common, module: "esnext", moduleResolution: "bundler", noEmit: true },
};
for (const [mode, compilerOptions] of Object.entries(configs))
  await writeFile(
    path.join(app, `tsconfig.${mode}.json`),
    `${JSON.stringify({ compilerOptions, include: ["docs"] }, null, 2)}\n`,
  );

/** "docs/<slug>/<name>(l,c): error …" back to the markdown line; other files are the packages' types. */
const blockByFile = new Map(checked.map((c) => [`docs/${c.doc.slug}/${c.block.name}`, c]));
const typeErrors = new Map(); // where -> messages
await Promise.all(
  Object.keys(configs).map(async (mode) => {
    const r = await run(
      path.join(app, "node_modules/.bin/tsc"),
      ["-p", `tsconfig.${mode}.json`, "--pretty", "false"],
      { cwd: app },
    );
    const lines = r.out.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const m = /^(.+?)\((\d+),(\d+)\): (error .*)$/.exec(lines[i]);
      if (!m) continue;
      let message = m[4];
      while (i + 1 < lines.length && /^\s/.test(lines[i + 1])) message += `\n${lines[++i]}`;
      const c = blockByFile.get(m[1]);
      const key = c ? c.block.where : m[1].replace(/^.*node_modules\//, "");
      const at = c ? `${c.doc.file}:${c.block.line + Number(m[2])}` : `${m[1]}:${m[2]}`;
      const list = typeErrors.get(key) ?? [];
      list.push(`[${mode}] ${at}: ${message}`);
      typeErrors.set(key, list);
    }
    if (r.code !== 0 && !lines.some((l) => / error TS/.test(l)))
      typeErrors.set(`tsc (${mode})`, [tail(r.out)]);
  }),
);
for (const { block } of checked) {
  const errs = typeErrors.get(block.where);
  record("typecheck", block.where, errs ? "fail" : "pass", errs?.join("\n"));
  typeErrors.delete(block.where);
}
for (const [where, errs] of typeErrors)
  record("typecheck", `${where} (types as installed)`, "fail", errs.join("\n"));

// Services the examples may need.
async function reachable(url, fallback) {
  const u = new URL(url ?? fallback);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port) });
    socket.setTimeout(2000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}
const services = {
  redis: await reachable(process.env.REDIS_URL, "redis://127.0.0.1:6379"),
  postgres: await reachable(process.env.DATABASE_URL, "postgres://postgres@127.0.0.1:5432/test"),
};

log("examples: run (waiting for npm rebuild)");
if (!(await rebuilding)) await finish();
const harness = path.join(root, "scripts/check-packages-server.mjs");
// What the examples read from the environment, as their READMEs tell users to set it.
const runEnv = { ...process.env, SESSION_SECRET: randomBytes(48).toString("base64"), FORCE_COLOR: "0" };
const runnable = checked.filter((c) => c.block.kind === "run" || c.block.kind === "test");
await pool(runnable, 2, async ({ doc, block }) => {
  const down = block.needs.filter((s) => !services[s]);
  if (down.length > 0) {
    record("run", block.where, inCI ? "fail" : "skip", `${down.join(" and ")} not reachable`);
    return;
  }
  const outDir = path.join(app, "out", doc.slug);
  const js = block.name.replace(/\.(ts|mts)$/, (e) => (e === ".mts" ? ".mjs" : ".js"));
  const cwd = path.join(tmp, "run", `${doc.slug}-L${block.line}`);
  await mkdir(cwd, { recursive: true });
  const t = Date.now();
  const r =
    block.kind === "test"
      ? await run(path.join(app, "node_modules/.bin/vitest"), ["run", "--root", outDir, js], {
          cwd: outDir,
          env: runEnv,
          timeoutMs: 300_000,
        })
      : await run(process.execPath, ["--import", harness, path.join(outDir, js)], {
          cwd,
          env: runEnv,
          timeoutMs: 90_000,
        });
  const took = ` (${seconds(Date.now() - t)})`;
  if (!existsSync(path.join(outDir, js)))
    record("run", block.where + took, "fail", `not emitted by tsc\n${r.out}`);
  else
    record(
      "run",
      block.where + took,
      r.code === 0 ? "pass" : "fail",
      r.code === 0 ? undefined : tail(r.out, 40),
    );
});

await finish();
