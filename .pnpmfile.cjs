// Native dependencies (better-sqlite3, and sqlite3 under @keyv/sqlite) fall back to compiling with node-gyp
// when no prebuilt binary can be downloaded. node-gyp then downloads Node's headers, unless it is told
// where headers for this exact Node version already are (`npm_config_nodedir`). Node installed from a
// distribution package, nvm or the official tarball ships them next to the binary (<prefix>/include/node):
// point the build scripts pnpm runs at them, so `pnpm install` needs no network beyond the registry.
// pnpm 12 does not read `nodedir` from .npmrc, and a pnpmfile's process.env does not reach the scripts;
// `extraEnv` does. A nodedir the user set, or headers of another Node version, are left alone.
const { existsSync, readFileSync } = require("node:fs");
const path = require("node:path");

function localNodeHeaders() {
  if (Object.keys(process.env).some((name) => name.toLowerCase() === "npm_config_nodedir")) return undefined;
  const prefix = path.resolve(path.dirname(process.execPath), "..");
  const headers = path.join(prefix, "include", "node");
  // node-gyp builds with <nodedir>/include/node/common.gypi too.
  if (!existsSync(path.join(headers, "common.gypi"))) return undefined;
  try {
    const header = readFileSync(path.join(headers, "node_version.h"), "utf8");
    const part = (name) => header.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1];
    const version = `${part("MAJOR")}.${part("MINOR")}.${part("PATCH")}`;
    return version === process.versions.node ? prefix : undefined;
  } catch {
    return undefined;
  }
}

module.exports = {
  hooks: {
    updateConfig(config) {
      const nodedir = localNodeHeaders();
      if (nodedir === undefined) return config;
      return { ...config, extraEnv: { ...config.extraEnv, npm_config_nodedir: nodedir } };
    },
  },
};
