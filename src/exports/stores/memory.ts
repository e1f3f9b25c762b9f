/** `regscan/stores/memory`: the in-process store (no driver; also exported by the root). */
export { MemoryStore, type MemoryStoreOptions } from "../../cache/stores/memory.js";
