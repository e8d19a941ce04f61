// Preloaded (`node --import`) by check-packages.mjs into each runnable documentation example. An
// example that starts an HTTP server (`app.listen(3000)`, `serve({ port: 3000 })`…) runs as written,
// except that it listens on a free loopback port instead of the one it names (the machine's port
// 3000 may be taken). Once it listens, it gets two `GET /` requests, the second carrying the cookies
// the first set; both must answer 2xx. The process then exits 0, or 1 if a request failed.
// An example that never listens just runs to its end.
import net from "node:net";

const listen = net.Server.prototype.listen;
let exercised = false;

net.Server.prototype.listen = function (...args) {
  const callback = typeof args.at(-1) === "function" ? args.at(-1) : undefined;
  const first = args[0];
  let rewritten = args;
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first)) || first === undefined)
    rewritten = callback ? [0, "127.0.0.1", callback] : [0, "127.0.0.1"];
  else if (first !== null && typeof first === "object" && !("fd" in first) && !("path" in first))
    rewritten = [{ ...first, port: 0, host: "127.0.0.1", ipv6Only: false }, ...args.slice(1)];
  if (!exercised) {
    exercised = true;
    this.once("listening", () => {
      exercise(this).then(
        () => process.exit(0),
        (err) => {
          console.error(`[check] ${err instanceof Error ? err.message : String(err)}`);
          process.exit(1);
        },
      );
    });
  }
  return listen.apply(this, rewritten);
};

async function exercise(server) {
  const { port } = server.address();
  let cookie;
  for (let i = 1; i <= 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      headers: cookie ? { cookie } : {},
      signal: AbortSignal.timeout(10_000),
    });
    const body = await res.text();
    console.log(`[check] GET / #${i}: ${res.status} ${body.slice(0, 200)}`);
    if (res.status < 200 || res.status > 299) throw new Error(`GET / answered ${res.status}`);
    const set = res.headers.getSetCookie().map((c) => c.split(";")[0]);
    if (set.length > 0) cookie = set.join("; ");
  }
}
