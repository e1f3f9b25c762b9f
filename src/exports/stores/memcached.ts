/** `regscan/stores/memcached`: the memcached store (memjs), static servers or DNS SRV. */
export { MemcachedStore, type MemcachedStoreOptions } from "../../cache/stores/memcached.js";
