// One app server of the HTTP benchmark, in its own process (pinned to core 1 by run.ts).
//   node --import tsx bench/src/http/server.ts <variant index>   (our packages from their built dist, as users get them)
import { buildApp, VARIANTS } from "./apps.js";

const variant = VARIANTS[Number(process.argv[2])];
if (variant === undefined) throw new Error(`no variant ${process.argv[2]}`);
const app = await buildApp(variant);
const server = await app.listen();
const address = server.address();
if (address === null || typeof address === "string") throw new Error("no TCP address");
process.stdout.write(`READY ${address.port}\n`);
const stop = () => {
  void app.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.once("disconnect", stop);
