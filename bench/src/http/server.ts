// One app server of the HTTP benchmark, in its own process (pinned to core 1 by run.ts).
//   node --import tsx bench/src/http/server.ts <variant index> [race]   (our packages from their built dist, as users get them)
//   with "race", the index is into RACE_VARIANTS (the same-cookie race's servers), else into VARIANTS
import { buildApp, RACE_VARIANTS, VARIANTS } from "./apps.js";

const variant = (process.argv[3] === "race" ? RACE_VARIANTS : VARIANTS)[Number(process.argv[2])];
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
