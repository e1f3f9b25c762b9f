/**
 * A Store that writes every value into several stores and reads (and leases) from the
 * first: one warming pass fills them all, so that a test can check each store's reads
 * without paying the registry once per store.
 */
import type { Store } from "../../../src/cache/store.js";

/** Reads, leases and pings go to `primary`; writes go to `primary` and every one of `others`. */
export function teeStore(primary: Store, others: readonly Store[]): Store {
  return {
    get: (key, opts) => primary.get(key, opts),
    getMany: (keys, opts) => primary.getMany(keys, opts),
    set: async (key, deadline, value, opts) => {
      await Promise.all([primary, ...others].map((s) => s.set(key, deadline, value, opts)));
    },
    acquire: (key, ttlMs, owner, opts) => primary.acquire(key, ttlMs, owner, opts),
    release: (key, owner, opts) => primary.release(key, owner, opts),
    ping: (opts) => primary.ping(opts),
    // The stores are the caller's, closed by the caller.
    close: async () => {},
  };
}
