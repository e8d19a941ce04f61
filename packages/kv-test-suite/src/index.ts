export type { ConformanceOptions } from "./conformance.js";
export { ODD_KEYS, runStoreConformance } from "./conformance.js";
export { checkForgedCursors, forgeCursors } from "./cursors.js";
export { runModelCheck } from "./model.js";
export { requireService } from "./service.js";
