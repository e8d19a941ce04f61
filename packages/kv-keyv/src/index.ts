export type { FromKeyvOptions } from "./from-keyv.js";
export { fromKeyv } from "./from-keyv.js";
export type { KeyvAdapterLike, KeyvLike } from "./shapes.js";
export type { KeyvStorageCapabilityLike, KvKeyvAdapter, ToKeyvOptions } from "./to-keyv.js";
export { toKeyv } from "./to-keyv.js";
