export { type ChildServer, startChildServer } from "./child-server.js";
export { type Cleanup, cleanupsAfterEach, tempSqliteStore } from "./cleanups.js";
export { closedPortStore, freePort } from "./closed-port.js";
export { type CookieJar, cookieJar } from "./cookie-jar.js";
export { countingStore, type StoreCalls } from "./counting-store.js";
export { sameCookieRace } from "./same-cookie-race.js";
export { SECRET } from "./secrets.js";
export { IO_METHODS, wrapStore } from "./wrap-store.js";
