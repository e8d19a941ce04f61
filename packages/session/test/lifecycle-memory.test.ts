import { createMemoryStore } from "@kvsession/kv";
import { describeLifecycle } from "./lifecycle.js";

describeLifecycle("MemoryStore", () => createMemoryStore());
