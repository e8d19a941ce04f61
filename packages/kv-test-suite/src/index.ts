export { runStoreConformance, ODD_KEYS } from "./conformance.js";
export type { ConformanceOptions } from "./conformance.js";
export { runModelCheck } from "./model.js";
export { requireService } from "./service.js";
